import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { unpack } from 'msgpackr';
import { Channel, encodeFrame, encodeSegmentFrame } from '../src/protocol/channel.js';

type Msg = { type: string; n?: number; seq?: number; bytes?: Uint8Array };

const dir = mkdtempSync(join(tmpdir(), 'mkvcast-channel-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;

/** A connected pair of sockets over a real Unix socket. */
async function pair(): Promise<[Socket, Socket]> {
  const path = join(dir, `s${count++}.sock`);
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect(path);
  await new Promise((r) => client.once('connect', r));
  const serverSide = await accepted;
  server.close();
  return [client, serverSide];
}

test('encodeFrame: 4-byte big-endian length, then msgpack, in memory of its own', () => {
  const a = encodeFrame({ type: 'x', n: 1 });
  const copy = Buffer.from(a);
  encodeFrame({ type: 'y', n: 2, bytes: Buffer.alloc(100, 9) });
  assert.equal(a.readUInt32BE(0), a.length - 4);
  // pack() reuses one scratch buffer: a later encoding must not change an earlier frame.
  assert.deepEqual(a, copy);
  assert.deepEqual(unpack(a.subarray(4)), { type: 'x', n: 1 });
});

test('encodeSegmentFrame: the bytes of encodeFrame, in two parts, the media not copied', () => {
  // Sizes on each side of msgpack's bin 8 / bin 16 / bin 32 boundaries.
  for (const n of [0, 1, 255, 256, 65_535, 65_536, 300_000]) {
    const fields = { type: 'segment' as const, stream: 'cam', sentAt: 1_700_000_000_123, seq: 4_000_000_001, ts: 1234.5, keyframe: n % 2 === 0 };
    const media = Buffer.alloc(n, n % 251);
    const [head, body] = encodeSegmentFrame(fields, media);
    assert.equal(body, media, `${n} bytes: the media itself, not a copy`);
    assert.deepEqual(Buffer.concat([head, body]), encodeFrame({ ...fields, bytes: media }), `${n} bytes`);
  }
});

test('frames sent as parts, many in one write, arrive whole and in order', async () => {
  const [client, server] = await pair();
  const sender = new Channel<Msg, Msg>(client);
  const receiver = new Channel<Msg, Msg>(server);
  const got: Msg[] = [];
  const all = new Promise<void>((resolve) => receiver.on('message', (m) => got.push(m) === 40 && resolve()));
  const parts = Array.from({ length: 40 }, (_, n) =>
    encodeSegmentFrame({ type: 'segment', stream: 's', sentAt: 0, seq: n, ts: n, keyframe: false }, Buffer.alloc(n * 5003, n)),
  ).flat();
  sender.sendParts(parts);
  await all;
  got.forEach((m, n) => {
    assert.equal((m as { seq?: number }).seq, n);
    assert.deepEqual(Buffer.from(m.bytes!), Buffer.alloc(n * 5003, n));
  });
  sender.close();
  receiver.close();
});

test('messages arrive whole and in order whatever the read boundaries', async () => {
  const [raw, other] = await pair();
  const receiver = new Channel<Msg, Msg>(other);
  const got: Msg[] = [];
  const all = new Promise<void>((resolve) => receiver.on('message', (m) => got.push(m) === 50 && resolve()));
  const frames = Buffer.concat(
    Array.from({ length: 50 }, (_, n) => encodeFrame({ type: 'segment', n, bytes: Buffer.alloc(n * 97, n) })),
  );
  // Written 1, 3, 7… bytes at a time so frames and prefixes are split across reads.
  for (let pos = 0, step = 1; pos < frames.length; pos += step, step = (step * 3) % 1021 || 1) {
    raw.write(frames.subarray(pos, pos + step));
  }
  const timeout = AbortSignal.timeout(5000);
  await Promise.race([all, new Promise((resolve) => timeout.addEventListener('abort', resolve))]);
  assert.equal(got.length, 50);
  got.forEach((m, n) => {
    assert.equal(m.n, n);
    assert.deepEqual(Buffer.from(m.bytes!), Buffer.alloc(n * 97, n));
  });
  raw.destroy();
  receiver.close();
});

test('a frame over the limit closes the channel with FrameTooLargeError', async () => {
  const [raw, other] = await pair();
  const receiver = new Channel<Msg, Msg>(other, { maxFrameSize: 1024 });
  const closed = new Promise<Error | undefined>((r) => receiver.once('close', r));
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(1025); // declares 1025 bytes: one past the limit, and none of them sent
  raw.write(prefix);
  const err = await closed;
  assert.equal((err as { code?: string })?.code, 'MKV_ERR_FRAME_TOO_LARGE');
  raw.destroy();
});

test('a frame that is not a typed message closes the channel with a protocol error', async () => {
  const [raw, other] = await pair();
  const receiver = new Channel<Msg, Msg>(other);
  const closed = new Promise<Error | undefined>((r) => receiver.once('close', r));
  // length 1, then msgpack 0x2a: the number 42, not an object with a type
  raw.write(Buffer.from([0, 0, 0, 1, 0x2a]));
  assert.equal(((await closed) as { code?: string })?.code, 'MKV_ERR_PROTOCOL');
  raw.destroy();
});

test('send() reaches the peer and closed channels refuse to send', async () => {
  const [a, b] = await pair();
  const left = new Channel<Msg, Msg>(a);
  const right = new Channel<Msg, Msg>(b);
  const got = new Promise<Msg>((r) => right.once('message', r));
  left.send({ type: 'hello', n: 7 });
  assert.deepEqual(await got, { type: 'hello', n: 7 });
  left.close();
  assert.equal(left.closed, true);
  assert.equal(left.send({ type: 'late' }), false);
  right.close();
});

test("caughtUp: after a read whose last frame is whole, never while a frame is still arriving", async () => {
  const [raw, other] = await pair();
  const receiver = new Channel<Msg, Msg>(other);
  const events: string[] = [];
  receiver.on('message', (m) => events.push(`message ${m.n}`));
  receiver.on('caughtUp', () => events.push('caughtUp'));
  const first = encodeFrame({ type: 'x', n: 1 });
  const second = encodeFrame({ type: 'x', n: 2, bytes: Buffer.alloc(200, 2) });
  const one = new Promise((r) => receiver.once('message', r));
  raw.write(Buffer.concat([first, second.subarray(0, 50)]));
  await one;
  // The read that brought the first frame is handled to its end in this turn of the loop.
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, ['message 1'], 'the second frame is on its way: not caught up');
  const caughtUp = new Promise<void>((r) => receiver.once('caughtUp', r));
  raw.write(second.subarray(50));
  await caughtUp;
  assert.deepEqual(events, ['message 1', 'message 2', 'caughtUp']);
  raw.destroy();
  receiver.close();
});

test('caughtUp over a write of several MB: at each one, every byte read is in a whole frame', async () => {
  const [client, server] = await pair();
  const sender = new Channel<Msg, Msg>(client);
  const receiver = new Channel<Msg, Msg>(server);
  // Frames longer than a read (64 KiB): reads end inside frames.
  const frames = Array.from({ length: 60 }, (_, n) =>
    encodeSegmentFrame({ type: 'segment', stream: 's', sentAt: 0, seq: n, ts: n, keyframe: false }, Buffer.alloc(100_003, n)),
  );
  const total = frames.reduce((sum, [head, body]) => sum + head.length + body.length, 0);
  let whole = 0;
  let messages = 0;
  let caughtUps = 0;
  const sizes = new Map(frames.map(([head, body], n) => [n, head.length + body.length]));
  receiver.on('message', (m) => {
    whole += sizes.get(m.seq!)!;
    messages++;
  });
  const early: string[] = [];
  const done = new Promise<void>((resolve) =>
    receiver.on('caughtUp', () => {
      caughtUps++;
      if (whole !== server.bytesRead) early.push(`${server.bytesRead} bytes read, ${whole} in whole frames`);
      if (whole === total) resolve();
    }),
  );
  sender.sendParts(frames.flat());
  await done;
  assert.deepEqual(early, [], 'caught up with a frame still arriving');
  assert.equal(messages, frames.length);
  assert.ok(caughtUps < messages, `${caughtUps} caughtUp for ${messages} frames of one write`);
  sender.close();
  receiver.close();
});
