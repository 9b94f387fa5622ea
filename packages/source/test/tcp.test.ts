import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { InputError, UsageError } from '@mkvcast/shared';
import { TcpListenSource, parseTcpUrl, type TcpListenOptions } from '../src/inputs/tcp.js';

const bounded = (ms = 3000): AbortSignal => AbortSignal.timeout(ms);

async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

interface Listening {
  tcp: TcpListenSource;
  log: string[];
  /** Resolves once the log has `count` lines. */
  logged: (count: number) => Promise<void>;
}

async function listen(t: TestContext, options: TcpListenOptions = {}): Promise<Listening> {
  const log: string[] = [];
  const changed = new Set<() => void>();
  const tcp = await TcpListenSource.listen('tcp://127.0.0.1:0', (line) => (log.push(line), changed.forEach((test) => test())), options);
  t.after(() => tcp.close());
  const logged = (count: number): Promise<void> =>
    within(3000, new Promise<void>((resolve) => {
      const test = (): void => {
        if (log.length < count) return;
        changed.delete(test);
        resolve();
      };
      changed.add(test);
      test();
    }), `${count} log lines; got:\n${log.join('\n')}`);
  return { tcp, log, logged };
}

/** A publisher connected to the source; destroyed when the test ends. */
async function publisher(t: TestContext, tcp: TcpListenSource): Promise<Socket> {
  const socket = connect(tcp.address.port, '127.0.0.1');
  socket.on('error', () => {}); // refused publishers see resets
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Resolves when the peer closed `socket` (a refused publisher). */
function closedByPeer(socket: Socket): Promise<unknown> {
  return within(1000, socket.closed ? Promise.resolve() : once(socket, 'close').then(() => {}), 'closed by the source');
}

test('parses tcp://host:port and rejects anything else with a UsageError', () => {
  assert.deepEqual(parseTcpUrl('tcp://0.0.0.0:12345'), { host: '0.0.0.0', port: 12345 });
  assert.deepEqual(parseTcpUrl('tcp://[::1]:5555/'), { host: '::1', port: 5555 });
  for (const bad of ['http://host:1', 'tcp://host', 'tcp://host:1/path', 'tcp://h:99999', 'tcp://u:p@h:1', 'tcp://h:1?x', '12345', '']) {
    assert.throws(() => parseTcpUrl(bad), (err: Error) => {
      assert.ok(err instanceof UsageError, bad);
      assert.match(err.message, /expected tcp:\/\/host:port/);
      return true;
    });
  }
});

test('listen() rejects a bad URL and a port in use with clear errors', async (t) => {
  await assert.rejects(TcpListenSource.listen('tcp://nohost'), { code: 'MKV_ERR_USAGE' });
  const taken = createServer().listen(0, '127.0.0.1');
  t.after(() => taken.close());
  await once(taken, 'listening');
  const url = `tcp://127.0.0.1:${(taken.address() as { port: number }).port}`;
  await assert.rejects(TcpListenSource.listen(url), (err: Error) => {
    assert.ok(err instanceof InputError);
    assert.match(err.message, new RegExp(`^cannot listen on ${url}: .*EADDRINUSE`));
    assert.equal(err.code, 'MKV_ERR_INPUT');
    return true;
  });
});

test('each connection is a session whose stream is the socket', async (t) => {
  const { tcp } = await listen(t);
  assert.ok(tcp.address.port > 0);
  const pending = tcp.next(bounded());
  const client = await publisher(t, tcp);
  const session = await pending;
  assert.equal(session?.label, `tcp client 127.0.0.1:${client.localPort}`);
  client.end('matroska bytes');
  assert.equal(String(await within(1000, readAll(session.stream), 'read')), 'matroska bytes');

  // The next publisher gets the next session.
  const again = await publisher(t, tcp);
  again.end('more');
  const second = await tcp.next(bounded());
  assert.equal(second?.label, `tcp client 127.0.0.1:${again.localPort}`);
  assert.equal(String(await within(1000, readAll(second.stream), 'read')), 'more');
});

test('one publisher at a time: others are refused while a session is active', async (t) => {
  const { tcp, log } = await listen(t);
  const first = await publisher(t, tcp);
  const session = (await tcp.next(bounded()))!;
  const intruder = await publisher(t, tcp);
  const intruderPort = intruder.localPort;
  await closedByPeer(intruder);
  assert.match(log[0]!, new RegExp(`tcp client 127\\.0\\.0\\.1:${intruderPort} refused: publisher 127\\.0\\.0\\.1:${first.localPort} is still connected`));

  // The first publisher is undisturbed.
  first.write('still ');
  first.end('here');
  assert.equal(String(await within(1000, readAll(session.stream), 'read')), 'still here');
  await within(1000, once(session.stream, 'close'), 'session closed');

  // Its slot is free again.
  const next = await publisher(t, tcp);
  assert.equal((await tcp.next(bounded()))?.label, `tcp client 127.0.0.1:${next.localPort}`);
});

test('a publisher that connects before next() waits for it, and holds the slot meanwhile', async (t) => {
  const { tcp, log } = await listen(t);
  const early = await publisher(t, tcp);
  early.write('early bytes');
  // Connected after `early` had its connect: the kernel queues them, and the source accepts in order.
  const intruder = await publisher(t, tcp);
  await closedByPeer(intruder);
  assert.equal(log.length, 1);
  assert.match(log[0]!, new RegExp(`refused: publisher 127\\.0\\.0\\.1:${early.localPort} is still connected`));
  const session = await tcp.next(bounded());
  assert.equal(session?.label, `tcp client 127.0.0.1:${early.localPort}`);
  early.end();
  assert.equal(String(await within(1000, readAll(session.stream), 'read')), 'early bytes');
});

test('a waiting publisher that resets frees the slot without an unhandled error', async (t) => {
  const { tcp, log, logged } = await listen(t);
  const gone = await publisher(t, tcp);
  // A refused intruder shows that the source has accepted `gone` and holds the slot for it.
  await closedByPeer(await publisher(t, tcp));
  assert.match(log[0]!, new RegExp(`publisher 127\\.0\\.0\\.1:${gone.localPort} is still connected`));
  gone.resetAndDestroy();
  // The source learns of the reset on a later turn; until then new publishers are refused, each
  // with a line that names the holder. Two at a time: of two, at least one is refused (the
  // first is refused or holds the slot, and then the second is refused); once a line names one
  // of ours as the holder, the reset freed the slot.
  const ours = new Map<number, Socket>();
  const holder = (): Socket | undefined => {
    for (const line of log) {
      const named = ours.get(Number(/publisher 127\.0\.0\.1:(\d+) is still connected/.exec(line)?.[1]));
      if (named) return named;
    }
    return undefined;
  };
  for (let i = 0; i < 50 && holder() === undefined; i++) {
    const lines = log.length;
    for (const next of [await publisher(t, tcp), await publisher(t, tcp)]) ours.set(next.localPort!, next);
    await logged(lines + 1);
  }
  const next = holder();
  assert.ok(next, `the slot stayed with the reset publisher:\n${log.join('\n')}`);
  next.end('x');
  const session = await tcp.next(bounded());
  assert.equal(session?.label, `tcp client 127.0.0.1:${next.localPort}`);
});

test('a publisher that goes quiet is dropped with MKV_ERR_INPUT_STALLED, and the slot freed', async (t) => {
  const { tcp } = await listen(t, { idleTimeoutMs: 100 });
  const quiet = await publisher(t, tcp);
  // Before its last byte: the idle timer restarts when that byte arrives, not before this.
  const started = performance.now();
  quiet.write('a');
  const session = (await tcp.next(bounded()))!;
  await assert.rejects(within(2000, readAll(session.stream), 'stall'), { code: 'MKV_ERR_INPUT_STALLED', message: /sent nothing for 100 ms/ });
  assert.ok(performance.now() - started >= 90);
  await closedByPeer(quiet);
  const next = await publisher(t, tcp);
  assert.equal((await tcp.next(bounded()))?.label, `tcp client 127.0.0.1:${next.localPort}`);
});

test('aborting the signal rejects a waiting next(); a later next() still works', async (t) => {
  const { tcp } = await listen(t);
  const controller = new AbortController();
  const waiting = tcp.next(controller.signal);
  controller.abort();
  await assert.rejects(within(2000, waiting, 'abort'), { name: 'AbortError' });
  await assert.rejects(tcp.next(AbortSignal.abort()), { name: 'AbortError' });
  const pending = tcp.next(bounded());
  const client = await publisher(t, tcp);
  assert.equal((await pending)?.label, `tcp client 127.0.0.1:${client.localPort}`);
});

test('close() resolves a waiting next() with null, drops the publisher, stops listening', async (t) => {
  const { tcp } = await listen(t);
  const { port } = tcp.address;
  const waiting = tcp.next(bounded());
  tcp.close();
  assert.equal(await within(500, waiting, 'close'), null);
  assert.equal(await tcp.next(bounded()), null);
  const refused = connect(port, '127.0.0.1');
  await assert.rejects(within(1000, once(refused, 'connect'), 'refused'), { code: 'ECONNREFUSED' });

  const { tcp: other } = await listen(t);
  const client = await publisher(t, other);
  const session = (await other.next(bounded()))!;
  session.stream.on('error', () => {});
  other.close();
  await closedByPeer(client);
  assert.equal(session.stream.destroyed, true);
});
