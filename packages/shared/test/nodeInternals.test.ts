import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { checkNodeInternals, createServerHandle, stopHandleReading } from '../src/nodeInternals.js';

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

test('stopHandleReading: a connected socket stops reading at the handle', async (t) => {
  const server = net.createServer();
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.after(() => client.destroy());
  const socket = await accepted;
  t.after(() => socket.destroy());
  const handle = (socket as unknown as { _handle: { reading: boolean } })._handle;
  assert.equal(handle.reading, true);
  stopHandleReading(socket);
  assert.equal(handle.reading, false);
});
