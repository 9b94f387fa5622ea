import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { Channel, Logger, PROTOCOL_VERSION, type EdgeMessage, type SourceConfig, type SourceMessage } from '@mkvcast/shared';
import { Hub, OUTBOX_MAX_BYTES } from '../src/hub.js';
import type { LiveHeader } from '../src/header.js';

const dir = mkdtempSync(join(tmpdir(), 'mkvcast-hub-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, maxDelayMs = 0): SourceConfig {
  return {
    socketPath: join(dir, `${name}.sock`),
    inputs: [],
    bufferMs: 60_000,
    bufferBytes: 64 * 1024 * 1024,
    edgeBacklogBytes: 64 * 1024 * 1024,
    maxDelayMs,
    publishKey: null,
    graceMs: 1000,
    idleTimeoutMs: 1000,
    maxPublished: 8,
    ffmpeg: null,
    logLevel: 'error',
    restore: [],
  };
}

const HEADER: LiveHeader = {
  docType: 'webm',
  timestampScale: 1_000_000,
  tracks: [{ number: 1, type: 'audio', codec: 'A_OPUS', setup: '' }],
  videoTrack: 0,
  defaultDurations: new Map(),
  bytes: Buffer.from('a header'),
};

interface TestEdge {
  got: SourceMessage[];
  welcomed: Promise<void>;
  hello: () => void;
  received: (n: number) => Promise<void>;
  close: () => void;
}

/** An edge: connects and collects what it gets; hello() says hello, and `welcomed` resolves at the welcome. */
function edge(socketPath: string): TestEdge {
  const channel = new Channel<SourceMessage, EdgeMessage>(connect(socketPath));
  const got: SourceMessage[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let welcome: () => void;
  const welcomed = new Promise<void>((resolve) => (welcome = resolve));
  channel.on('message', (m) => {
    if (m.type === 'welcome') return welcome();
    got.push(m);
    for (const w of waiters.filter((x) => got.length >= x.n)) w.resolve();
  });
  return {
    got,
    welcomed,
    hello: () => void channel.send({ type: 'hello', version: PROTOCOL_VERSION, edgeId: 1, epoch: null, resume: {} }),
    received: (n) => (got.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () => channel.close(),
  };
}

/** Resolves once `ok()` holds, checked at each turn of the event loop; throws after `turns`. */
async function until(ok: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (ok()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('never happened');
}

/** A hub on its own socket and an edge it has welcomed, both closed after the test. */
async function welcomedEdge(t: TestContext, name: string, maxDelayMs = 0): Promise<{ hub: Hub; edge: TestEdge }> {
  const hub = await Hub.listen(config(name, maxDelayMs), new Logger('test', 'error'));
  t.after(() => hub.close());
  const e = edge(config(name).socketPath);
  t.after(() => e.close());
  e.hello();
  await e.welcomed;
  return { hub, edge: e };
}

function texts(e: TestEdge): string[] {
  return e.got.map((m) => (m.type === 'segment' ? Buffer.from(m.bytes).toString() : m.type));
}

/** The number of parts of each write the hub makes to its edges. */
function countWrites(t: TestContext): number[] {
  const writes: number[] = [];
  const sendParts = Channel.prototype.sendParts;
  t.mock.method(Channel.prototype, 'sendParts', function (this: Channel<never, never>, parts: readonly Uint8Array[]) {
    writes.push(parts.length);
    return sendParts.call(this, parts);
  });
  return writes;
}

/** Lets the event loop go round `n` times. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

test('the Segments published in one turn of the event loop go to an edge in one write, in order', async (t) => {
  const { hub, edge: e } = await welcomedEdge(t, 'turn');
  const writes = countWrites(t);
  hub.openStream('s', HEADER);
  for (let i = 0; i < 20; i++) hub.publish('s', i * 20, true, Buffer.alloc(3000 + i, i));
  await e.received(21);
  assert.deepEqual(writes, [1 + 2 * 20], 'the header and 20 Segments (head and media each) in one write');
  assert.equal(e.got[0]!.type, 'header');
  e.got.slice(1).forEach((m, i) => {
    assert.ok(m.type === 'segment');
    assert.equal(m.seq, i);
    assert.deepEqual(Buffer.from(m.bytes), Buffer.alloc(3000 + i, i));
  });
});

test('an edge welcomed while Segments wait for the end of the turn gets each once, in order', async (t) => {
  const { hub, edge: first } = await welcomedEdge(t, 'join');
  hub.openStream('s', HEADER);
  hub.publish('s', 0, true, Buffer.from('one'));
  const second = edge(config('join').socketPath);
  t.after(() => second.close());
  await until(() => hub.stats().streams[0]?.edges === 2);
  // The hello is in the socket now and is read in this turn's poll phase, before 'two' is sent at its end.
  second.hello();
  hub.publish('s', 20, true, Buffer.from('two'));
  await second.welcomed;
  hub.publish('s', 40, true, Buffer.from('three'));
  await Promise.all([first.received(4), second.received(4)]);
  await until(() => texts(first).includes('three') && texts(second).includes('three'));
  assert.deepEqual(texts(first), ['header', 'one', 'two', 'three']);
  assert.deepEqual(texts(second), ['header', 'one', 'two', 'three']);
});

test('with a latency budget, what is published within it goes to an edge in one write when it ends', async (t) => {
  const { hub, edge: e } = await welcomedEdge(t, 'budget', 50);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const writes = countWrites(t);
  hub.openStream('s', HEADER);
  for (let i = 0; i < 3; i++) {
    hub.publish('s', i * 20, i === 0, Buffer.from(`piece ${i}`));
    await turns(3);
  }
  t.mock.timers.tick(49);
  await turns(3);
  assert.deepEqual(writes, [], 'nothing goes out before the budget is spent');
  t.mock.timers.tick(1);
  assert.deepEqual(writes, [1 + 2 * 3], 'the header and 3 Segments in one write');
  await e.received(4);
  assert.deepEqual(texts(e), ['header', 'piece 0', 'piece 1', 'piece 2']);
});

test('with a latency budget, a window past OUTBOX_MAX_BYTES goes out at once', async (t) => {
  const { hub, edge: e } = await welcomedEdge(t, 'full', 50);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const writes = countWrites(t);
  hub.openStream('s', HEADER);
  const piece = 64 * 1024;
  const n = Math.ceil(OUTBOX_MAX_BYTES / piece);
  for (let i = 0; i < n; i++) hub.publish('s', i * 20, i === 0, Buffer.alloc(piece, i));
  assert.equal(writes.length, 1, 'sent without waiting for the window');
  await e.received(1 + n);
  assert.equal(e.got.length, 1 + n);
});

/** A loopback connection: the accepting side and the client, destroyed after the test. */
async function tcpPair(t: TestContext): Promise<{ socket: Socket; client: Socket }> {
  const server = createServer();
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  t.after(() => client.destroy());
  const socket = await accepted;
  t.after(() => socket.destroy());
  return { socket, client };
}

test('a held live input is read only at each tick of the window, and what it gave goes to the edges at the end of that tick', async (t) => {
  const { hub, edge: e } = await welcomedEdge(t, 'held', 50);
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { socket, client } = await tcpPair(t);
  const read: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    read.push(chunk.toString());
    hub.publish('s', read.length * 20, true, chunk);
  });
  hub.openStream('s', HEADER);
  const release = hub.holdReads(socket);
  t.mock.timers.tick(50);
  await e.received(1);
  assert.deepEqual(texts(e), ['header'], 'the outbox went at the end of the tick');
  client.write('one');
  await turns(20);
  assert.deepEqual(read, [], 'between ticks, the socket is not read');
  t.mock.timers.tick(50);
  await until(() => read.length === 1);
  await e.received(2);
  assert.deepEqual(texts(e), ['header', 'one'], 'read at the tick and sent at its end');
  release();
  client.write('two');
  await until(() => read.length === 2);
  assert.deepEqual(read, ['one', 'two'], 'released, it reads as usual');
});
