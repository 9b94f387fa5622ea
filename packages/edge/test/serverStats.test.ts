// The master sends the whole server's stats to the edges only when more than its uptime changed
// (an idle server passes nothing around): an edge counts the uptime on from what it last got.
import assert from 'node:assert/strict';
import { after, before, mock, test } from 'node:test';
import net from 'node:net';
import { Logger, type ServerStats } from '@mkvcast/shared';
import { edgeConfig } from './config.js';
import { Edge } from '../src/edge.js';

const config = edgeConfig({ clientsPerEdge: 10 });

const edge = new Edge(config, new Logger('edge 1', 'error'), {
  load: () => undefined,
  streamDone: () => undefined,
  handBack: () => undefined,
  publish: () => undefined,
});
const server = net.createServer((socket) => edge.accept(socket));
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
after(() => {
  edge.close();
  server.close();
});

/** GET /stats over a real connection, its JSON body. */
async function stats(): Promise<{ uptimeS: number; players: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/stats`);
  assert.equal(res.status, 200);
  return (await res.json()) as { uptimeS: number; players: number };
}

test('/stats counts the uptime on from the stats the master last sent', async () => {
  mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  try {
    edge.serverStats = { uptimeS: 10, players: 0 } as unknown as ServerStats;
    assert.equal((await stats()).uptimeS, 10);
    mock.timers.tick(3_000);
    const later = await stats();
    assert.equal(later.uptimeS, 13);
    assert.equal(later.players, 0);
  } finally {
    mock.timers.reset();
  }
});
