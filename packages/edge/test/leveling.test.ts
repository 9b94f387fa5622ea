// An edge ahead of the others hands new players back to the master, but only so many at once:
// sockets cross IPC one at a time, and a crowd's batch queued behind one another would wait
// longer than the imbalance costs. Real loopback sockets; no source, no master.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import net, { type Socket } from 'node:net';
import { Logger } from '@mkvcast/shared';
import { edgeConfig } from './config.js';
import { Edge } from '../src/edge.js';

/** MAX_LEVELING in src/edge.ts. */
const MAX_LEVELING = 16;
const STEP_LIMIT = 2000;

// Configured but not started: a player waits in its slot, which is all this test needs.
const config = edgeConfig({ clientsPerEdge: 1000, edges: 2, streams: ['x'] });

const handedBack: Socket[] = [];
const edge = new Edge(config, new Logger('edge 1', 'error'), {
  load: () => undefined,
  streamDone: () => undefined,
  handBack: (socket) => void handedBack.push(socket),
  publish: () => undefined,
});
const server = net.createServer((socket) => edge.accept(socket));
const clients: net.Socket[] = [];
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
after(() => {
  for (const c of clients) c.destroy();
  edge.close();
  server.close();
});

function play(): void {
  const c = net.connect(port, '127.0.0.1', () => c.write('GET /live/x HTTP/1.1\r\nHost: t\r\n\r\n'));
  c.on('error', () => undefined);
  clients.push(c);
}

/** Waits, a turn of the event loop at a time (bounded), until `done()` holds. */
async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < STEP_LIMIT && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(done(), `never: ${what}`);
}

test('a crowd on an edge ahead of the others: at most MAX_LEVELING hand-backs queued, the rest stay', async () => {
  play();
  await until('the first player takes a slot', () => edge.stats().players === 1);
  edge.level(0, 1); // one player ahead of the least-loaded edge: hand new ones back
  const crowd = MAX_LEVELING + 8;
  for (let i = 0; i < crowd; i++) play();
  await until('every player of the crowd is placed', () => handedBack.length + edge.stats().players - 1 === crowd);
  assert.equal(handedBack.length, MAX_LEVELING);
  // One hand-back has gone (its socket closes): the next player may be handed back again.
  handedBack[0]!.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  play();
  await until('the next player is handed back', () => handedBack.length === MAX_LEVELING + 1);
});
