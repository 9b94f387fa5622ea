import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { DirectWriter, checkNodeInternals, createServerHandle, stopHandleReading, unsentBytes } from '../src/nodeInternals.js';

test('the Node internals mkvcast uses are there on this Node', () => {
  assert.doesNotThrow(() => checkNodeInternals());
  const handle = createServerHandle('127.0.0.1', 0, 4);
  assert.notEqual(typeof handle, 'number', 'a handle on loopback, port 0');
  if (typeof handle === 'number') return;
  const out: { port?: number } = {};
  assert.equal(handle.getsockname(out), 0);
  assert.ok((out.port ?? 0) > 0, 'bound to a port');
  handle.close();
});

test('without net._createServerHandle, start-up fails with MKV_ERR_START naming the Node version', (t) => {
  // The CommonJS module object (what the default import is), not the frozen ESM namespace.
  const internals = net as unknown as { _createServerHandle: unknown };
  const real = internals._createServerHandle;
  t.after(() => {
    internals._createServerHandle = real;
  });
  internals._createServerHandle = undefined;
  assert.throws(() => checkNodeInternals(), (err: { code?: string; message: string }) => {
    assert.equal(err.code, 'MKV_ERR_START');
    assert.ok(err.message.includes(process.version), err.message);
    assert.match(err.message, /_createServerHandle/);
    return true;
  });
});

/** A connected pair on loopback: the server's side and the client's, both destroyed after the test. */
async function socketPair(t: TestContext): Promise<{ socket: net.Socket; client: net.Socket }> {
  const server = net.createServer();
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.pause();
  t.after(() => client.destroy());
  const socket = await accepted;
  t.after(() => socket.destroy());
  return { socket, client };
}

/** Reads `n` bytes from a paused socket. */
function readAll(client: net.Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= n) resolve(Buffer.concat(chunks));
    });
    client.once('error', reject);
    client.once('close', () => reject(new Error(`closed after ${got} of ${n} bytes`)));
    client.resume();
  });
}

test('DirectWriter: direct and stream writes to a reader that holds back arrive whole and in order; libuv\'s queue counts as unsent', async (t) => {
  const writer = new DirectWriter();
  if (!writer.direct) return t.skip(`this Node (${process.version}) lacks process.binding('stream_wrap'): writes go through the stream`);
  const { socket, client } = await socketPair(t);
  // 16 MB in 64 KiB pieces, far past the two kernel buffers: most of it waits in libuv's queue.
  const pieces = Array.from({ length: 256 }, (_, i) => Buffer.alloc(64 * 1024, i));
  for (const piece of pieces.slice(0, 128)) writer.write(socket, piece);
  assert.equal(socket.writableLength, 0, 'the direct writes bypassed the stream');
  assert.ok(unsentBytes(socket) > 4 * 1024 * 1024, `libuv holds what the kernel refused (${unsentBytes(socket)} bytes)`);
  // Two stream writes (libuv takes the first; the stream holds the second until it is done),
  // then direct ones again: they queue behind both, never ahead.
  socket.write(pieces[128]!);
  socket.write(pieces[129]!);
  assert.ok(socket.writableLength > 0);
  for (const piece of pieces.slice(130)) writer.write(socket, piece);
  const got = await readAll(client, 256 * 64 * 1024);
  assert.equal(got.length, 256 * 64 * 1024);
  for (let i = 0; i < 256; i++) {
    const at = i * 64 * 1024;
    assert.ok(got[at] === i % 256 && got[at + 64 * 1024 - 1] === i % 256, `piece ${i} in its place`);
  }
  assert.equal(unsentBytes(socket), 0, 'nothing left once the reader took it all');
});

test('DirectWriter: a peer gone mid-stream destroys the socket, with no exception left uncaught', async (t) => {
  const writer = new DirectWriter();
  const { socket, client } = await socketPair(t);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  client.resetAndDestroy();
  const piece = Buffer.alloc(64 * 1024, 1);
  // Bounded: the reset reaches the socket after a write or two.
  for (let i = 0; i < 10_000 && !socket.destroyed; i++) {
    writer.write(socket, piece);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await closed;
  assert.equal(socket.destroyed, true);
});

test('stopHandleReading: a connected socket stops reading at the handle', async (t) => {
  const { socket } = await socketPair(t);
  const handle = (socket as unknown as { _handle: { reading: boolean } })._handle;
  assert.equal(handle.reading, true);
  stopHandleReading(socket);
  assert.equal(handle.reading, false);
});
