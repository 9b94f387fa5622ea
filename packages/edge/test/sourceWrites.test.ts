// The source sends what its inputs gave within --max-delay in one write; the kernel hands it to the
// edge in reads that can end inside a Segment. The edge writes to its players once the write is
// read whole, not after each read: a player gets one write per window, however many streams share
// it. A real Unix socket between a stand-in source (the wire protocol by hand) and a real Edge.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import net, { type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Channel, Logger, PROTOCOL_VERSION, encodeFrame, type EdgeMessage, type SourceMessage } from '@mkvcast/shared';
import { Edge } from '../src/edge.js';
import { VIDEO, cluster, header, simpleBlock } from './clusters.js';
import { edgeConfig } from './config.js';

const STEP_LIMIT = 2000;
const dir = mkdtempSync(join(tmpdir(), 'mkvcast-source-writes-'));
const socketPath = join(dir, 'source.sock');

const config = edgeConfig({ socketPath });

let source: Socket | undefined;
const sourceServer = net.createServer((socket) => {
  const channel = new Channel<EdgeMessage, SourceMessage>(socket);
  channel.once('message', () => {
    source = socket;
    channel.send({ type: 'welcome', version: PROTOCOL_VERSION, epoch: 'test', streams: ['a', 'b'] });
    for (const stream of ['a', 'b']) channel.send({ ...header([VIDEO]), stream });
  });
});
const edge = new Edge(config, new Logger('edge 1', 'error'), {
  load: () => undefined,
  streamDone: () => undefined,
  handBack: () => undefined,
  publish: () => undefined,
});
const playerServer = net.createServer((socket) => edge.accept(socket));
const players: Socket[] = [];
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => sourceServer.listen(socketPath, resolve));
  await new Promise<void>((resolve) => playerServer.listen(0, '127.0.0.1', resolve));
  port = (playerServer.address() as net.AddressInfo).port;
  edge.start();
  await edge.connected;
});
after(() => {
  for (const p of players) p.destroy();
  edge.close();
  playerServer.close();
  sourceServer.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Waits, a turn of the event loop at a time (bounded), until `done()` holds. */
async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < STEP_LIMIT && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(done(), `never: ${what}`);
}

const segment = (stream: string, seq: number, keyframe: boolean): SourceMessage & { bytes: Buffer } => ({
  type: 'segment',
  stream,
  seq,
  ts: seq * 250,
  keyframe,
  sentAt: Date.now(),
  bytes: cluster(seq * 250, simpleBlock(1, 0, keyframe, `${stream} ${seq}`)),
});

const sentTo = (stream: string): number => edge.stats().bytesOutByStream[stream] ?? 0;

test("a source write read in two parts reaches each player as one flush, once its last Segment is whole", async () => {
  const got = { a: 0, b: 0 };
  for (const stream of ['a', 'b'] as const) {
    const player = net.connect(port, '127.0.0.1', () => player.write(`GET /live/${stream} HTTP/1.1\r\nHost: t\r\n\r\n`));
    player.on('data', (chunk: Buffer) => (got[stream] += chunk.length));
    players.push(player);
  }
  await until('both players are in', () => edge.stats().players === 2 && got.a > 0 && got.b > 0);
  const before = { a: sentTo('a'), b: sentTo('b') };

  // One write of the window: a's first Segment, b's, then a's second, of which a read brings only the start.
  const a1 = segment('a', 0, true);
  const b1 = segment('b', 0, true);
  const a2 = segment('a', 1, false);
  const a2Frame = encodeFrame(a2);
  const first = Buffer.concat([encodeFrame(a1), encodeFrame(b1), a2Frame.subarray(0, 20)]);
  await new Promise<void>((resolve) => source!.write(first, () => resolve()));
  // The bytes are in the edge's socket now: a few turns of the loop and the edge has read them.
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual({ a: sentTo('a'), b: sentTo('b') }, before, 'nothing goes to the players while a Segment of the write is on its way');

  source!.write(a2Frame.subarray(20));
  await until('the write reaches the players', () => sentTo('a') > before.a && sentTo('b') > before.b);
  assert.equal(sentTo('a') - before.a, a1.bytes.length + a2.bytes.length, "a's two Segments in the one flush");
  assert.equal(sentTo('b') - before.b, b1.bytes.length);
  await until('the players have read it', () => got.a >= sentTo('a') && got.b >= sentTo('b'));
});
