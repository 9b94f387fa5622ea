import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http, { createServer, type IncomingMessage, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { UsageError } from '@mkvcast/shared';
import { UpstreamSource, type UpstreamOptions } from '../src/inputs/upstream.js';

// ------------------------------------------------------------------ a tiny origin

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
}

interface Origin {
  base: string;
  hits: Hit[];
  /** Server-side connections closed so far. */
  closed: number;
  /** Resolves once `check` holds; checked after every request and every closed connection. */
  until: (what: string, check: () => boolean) => Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

/** An HTTP server on 127.0.0.1 port 0, closed (connections and all) when the test ends. */
async function origin(t: TestContext, handle: Handler): Promise<Origin> {
  const server = createServer();
  const changed = new Set<() => void>();
  const state: Origin = {
    base: '',
    hits: [],
    closed: 0,
    until: (what, check) => within(3000, new Promise<void>((resolve) => {
      const test = (): void => {
        if (!check()) return;
        changed.delete(test);
        resolve();
      };
      changed.add(test);
      test();
    }), what),
  };
  const change = (): void => changed.forEach((test) => test());
  server.on('connection', (socket) => socket.once('close', () => (state.closed++, change())));
  server.on('request', (req, res) => {
    state.hits.push({ path: req.url ?? '', headers: req.headers });
    handle(req, res, state.hits.length);
    change();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return state;
}

/** A URL where nothing listens. */
async function refused(): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/gone`;
}

interface Pulling {
  upstream: UpstreamSource;
  log: string[];
  /** Resolves once `count` log lines match `pattern`. */
  logged: (pattern: RegExp, count?: number) => Promise<void>;
}

function source(t: TestContext, urls: string[], options: UpstreamOptions = {}): Pulling {
  const log: string[] = [];
  const changed = new Set<() => void>();
  const upstream = new UpstreamSource(urls, {
    minBackoffMs: 20,
    maxBackoffMs: 80,
    idleTimeoutMs: 2000,
    log: (line) => {
      log.push(line);
      changed.forEach((test) => test());
    },
    ...options,
  });
  t.after(() => upstream.close());
  const logged = (pattern: RegExp, count = 1): Promise<void> =>
    within(3000, new Promise<void>((resolve) => {
      const test = (): void => {
        if (log.filter((line) => pattern.test(line)).length < count) return;
        changed.delete(test);
        resolve();
      };
      changed.add(test);
      test();
    }), `${count} log line(s) like ${pattern}; got:\n${log.join('\n')}`);
  return { upstream, log, logged };
}

/**
 * The backoff's clock, for tests of how long it waits: setTimeout is mocked, so time stands
 * still until the test moves it, and a wait that should not happen never ends. Sockets keep
 * their own timers (idle timeouts), and waits in these tests use AbortSignal.timeout, which
 * the mock leaves alone. `gets` counts the requests the source started.
 */
function frozenClock(t: TestContext): { tick: (ms: number) => Promise<void>; gets: () => number } {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const get = t.mock.method(http, 'get');
  return {
    // Timers due run inside tick(); what they start runs in microtasks, done before setImmediate.
    tick: async (ms) => {
      t.mock.timers.tick(ms);
      await new Promise((resolve) => setImmediate(resolve));
    },
    gets: () => get.mock.callCount(),
  };
}

/** Every wait in these tests is bounded by this signal. */
const bounded = (ms = 3000): AbortSignal => AbortSignal.timeout(ms);

async function readAll(stream: Readable): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

/** `promise`, or a rejection after `ms` (AbortSignal.timeout: a clock the tests never mock). */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(new Error(`${what}: not within ${ms} ms`));
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}

/** Answers 200 with `body` written in pieces (a turn of the event loop apart), then ends. */
const streams =
  (...pieces: string[]): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'video/webm' });
    let i = 0;
    const step = (): void => {
      if (i === pieces.length) return void res.end();
      res.write(pieces[i++]);
      setImmediate(step);
    };
    step();
  };

// ------------------------------------------------------------------ sessions

test('a 200 is a session whose stream is the body; mkvcast asks without Icy-MetaData', async (t) => {
  const o = await origin(t, streams('ab', 'cd', 'ef'));
  const { upstream } = source(t, [`${o.base}/live/x`]);
  const session = await upstream.next(bounded());
  assert.ok(session);
  assert.equal(session.label, `${o.base}/live/x (attempt 1)`);
  assert.equal(String(await readAll(session.stream)), 'abcdef');
  const headers = o.hits[0]!.headers;
  assert.equal(headers['user-agent'], 'mkvcast');
  assert.equal(headers['icy-metadata'], undefined);
});

test('rejects URLs it cannot pull', () => {
  assert.throws(() => new UpstreamSource([]), UsageError);
  assert.throws(() => new UpstreamSource(['ftp://host/x']), { code: 'MKV_ERR_USAGE', message: /only http/ });
  assert.throws(() => new UpstreamSource(['http://ok/x', 'not a url']), { code: 'MKV_ERR_USAGE', message: /not a url/ });
});

// ------------------------------------------------------------------ failover

test('fails over in order; a round starts after the URL whose session ended (here the last: so the first)', async (t) => {
  const journal: string[] = [];
  const gone = await refused();
  const notFound = await origin(t, (_req, res) => (journal.push('404'), res.writeHead(404).end()));
  const broken = await origin(t, (_req, res) => (journal.push('500'), res.writeHead(500).end()));
  const good = await origin(t, (req, res, hit) => (journal.push('200'), streams(`session ${hit}`)(req, res, hit)));
  const { upstream, log } = source(t, [gone, `${notFound.base}/a`, `${broken.base}/b`, `${good.base}/c`]);

  const first = await upstream.next(bounded());
  assert.equal(first?.label, `${good.base}/c (attempt 4)`);
  assert.equal(String(await readAll(first.stream)), 'session 1');
  const second = await upstream.next(bounded());
  assert.equal(second?.label, `${good.base}/c (attempt 8)`);
  assert.equal(String(await readAll(second.stream)), 'session 2');

  assert.deepEqual(journal, ['404', '500', '200', '404', '500', '200']);
  assert.match(log[0]!, /\/gone \(attempt 1\): .*ECONNREFUSED/);
  assert.match(log[1]!, /\/a \(attempt 2\): HTTP 404 Not Found/);
  assert.match(log[2]!, /\/b \(attempt 3\): HTTP 500 Internal Server Error/);
});

test('a session that ends moves on to the next URL: on B, it stays on B when A is back, and goes back to A when B fails', async (t) => {
  const a = await origin(t, (req, res, hit) => streams(`A ${hit}`)(req, res, hit));
  const b = await origin(t, (req, res, hit) => streams(`B ${hit}`)(req, res, hit));
  const { upstream } = source(t, [`${a.base}/x`, `${b.base}/x`]);
  const order: string[] = [];
  for (let i = 0; i < 4; i++) {
    const session = await upstream.next(bounded());
    order.push(String(await readAll(session!.stream)));
  }
  // Each session ends (the origin closes it): the next is asked of the other origin first.
  assert.deepEqual(order, ['A 1', 'B 1', 'A 2', 'B 2']);
  assert.deepEqual([a.hits.length, b.hits.length], [2, 2], 'no request to the origin whose session just ended');
});

test('after a session from A, a dead B is skipped and A serves again', async (t) => {
  const gone = await refused();
  const a = await origin(t, (req, res, hit) => streams(`A ${hit}`)(req, res, hit));
  const { upstream, log } = source(t, [`${a.base}/x`, gone]);
  const one = await upstream.next(bounded());
  assert.equal(String(await readAll(one!.stream)), 'A 1');
  const two = await upstream.next(bounded());
  assert.equal(String(await readAll(two!.stream)), 'A 2');
  assert.match(log.join('\n'), /\/gone \(attempt 2\): .*ECONNREFUSED/, 'B was asked first');
});

test('an https URL is fetched over TLS (here it fails against a plain server, and the next URL wins)', async (t) => {
  const plain = await origin(t, streams('x'));
  const { upstream, log } = source(t, [`${plain.base.replace('http:', 'https:')}/tls`, `${plain.base}/plain`]);
  const session = await upstream.next(bounded());
  assert.equal(session?.label, `${plain.base}/plain (attempt 2)`);
  assert.equal(log.length, 1);
  assert.match(log[0]!, /^upstream https:\/\/127\.0\.0\.1:\d+\/tls \(attempt 1\): /);
});

test('a server that never answers is a failure after idleTimeoutMs', async (t) => {
  const silent = await origin(t, () => {});
  const good = await origin(t, streams('ok'));
  const { upstream, log } = source(t, [`${silent.base}/s`, `${good.base}/g`], { idleTimeoutMs: 100 });
  const started = performance.now();
  const session = await upstream.next(bounded());
  assert.equal(session?.label, `${good.base}/g (attempt 2)`);
  assert.ok(performance.now() - started >= 90);
  assert.match(log[0]!, /no answer in 100 ms/);
});

// ------------------------------------------------------------------ redirects

test('follows relative and absolute redirects', async (t) => {
  const target = await origin(t, streams('moved'));
  const first = await origin(t, (req, res) => {
    if (req.url === '/a') res.writeHead(302, { Location: '/b' }).end();
    else res.writeHead(307, { Location: `${target.base}/c` }).end();
  });
  const { upstream } = source(t, [`${first.base}/a`]);
  const session = await upstream.next(bounded());
  assert.equal(session?.label, `${first.base}/a → ${target.base}/c (attempt 1)`);
  assert.equal(String(await readAll(session.stream)), 'moved');
  assert.deepEqual(
    first.hits.map((hit) => hit.path),
    ['/a', '/b'],
  );
});

test('gives up on a URL after 5 redirects and moves on', async (t) => {
  const loop = await origin(t, (req, res) => res.writeHead(301, { Location: `${req.url}+` }).end());
  const noLocation = await origin(t, (_req, res) => res.writeHead(302).end());
  const good = await origin(t, streams('ok'));
  const { upstream, log } = source(t, [`${loop.base}/r`, `${noLocation.base}/n`, `${good.base}/g`]);
  const session = await upstream.next(bounded());
  assert.equal(session?.label, `${good.base}/g (attempt 3)`);
  assert.deepEqual(
    loop.hits.map((hit) => hit.path),
    ['/r', '/r+', '/r++', '/r+++', '/r++++', '/r+++++'], // the first request and 5 redirects
  );
  assert.equal(log[0], `upstream ${loop.base}/r → ${loop.base}/r+++++ (attempt 1): more than 5 redirects`);
  assert.match(log[1]!, /HTTP 302/);
});

// ------------------------------------------------------------------ backoff and reconnection

test('backs off exponentially (min..max) while every URL fails, then connects', async (t) => {
  const clock = frozenClock(t);
  const flaky = await origin(t, (req, res, hit) => (hit <= 5 ? res.writeHead(503).end() : streams('up')(req, res, hit)));
  const { upstream, log, logged } = source(t, [`${flaky.base}/f`], { minBackoffMs: 20, maxBackoffMs: 80 });
  const pending = upstream.next(bounded());
  const waits = [20, 40, 80, 80, 80];
  for (const [i, ms] of waits.entries()) {
    await logged(/retrying/, i + 1); // request i + 1 failed: the wait starts
    assert.equal(clock.gets(), i + 1);
    await clock.tick(ms - 1);
    assert.equal(clock.gets(), i + 1, `request ${i + 2} started before the ${ms} ms wait was over`);
    await clock.tick(1);
    assert.equal(clock.gets(), i + 2, `request ${i + 2} did not start once the ${ms} ms wait was over`);
  }
  const session = await pending;
  assert.equal(session?.label, `${flaky.base}/f (attempt 6)`);
  assert.deepEqual(
    log.filter((line) => line.includes('retrying')),
    waits.map((ms) => `the upstream failed; retrying in ${ms} ms`),
  );
});

test('reconnects at once after a session that delivered data; waits after one that delivered nothing', async (t) => {
  const clock = frozenClock(t);
  const o = await origin(t, (req, res, hit) => (hit === 2 ? res.writeHead(200).end() : streams(`data ${hit}`)(req, res, hit)));
  const { upstream, log, logged } = source(t, [`${o.base}/x`], { minBackoffMs: 150, maxBackoffMs: 1000 });

  const one = await upstream.next(bounded());
  assert.equal(String(await readAll(one!.stream)), 'data 1');
  // The clock stands still: had next() waited, it would never resolve and bounded() would abort it.
  const two = await upstream.next(bounded());
  assert.equal((await readAll(two!.stream)).length, 0);
  assert.equal(log.length, 0, 'no wait after a session with data');
  const three = upstream.next(bounded());
  await logged(/delivered nothing; retrying in 150 ms/);
  await clock.tick(149);
  assert.equal(clock.gets(), 2, 'a session without data is followed by the backoff');
  await clock.tick(1);
  assert.equal(clock.gets(), 3);
  assert.equal(String(await readAll((await three)!.stream)), 'data 3');
});

test('a backoff that grew is reset by a session that delivered data', async (t) => {
  const failing = [2, 3, 4, 6];
  const o = await origin(t, (req, res, hit) => (failing.includes(hit) ? res.writeHead(404).end() : streams(`s${hit}`)(req, res, hit)));
  const { upstream, log } = source(t, [`${o.base}/x`], { minBackoffMs: 10, maxBackoffMs: 1000 });
  assert.equal(String(await readAll((await upstream.next(bounded()))!.stream)), 's1');
  assert.equal(String(await readAll((await upstream.next(bounded()))!.stream)), 's5'); // after 10, 20, 40 ms
  assert.equal(String(await readAll((await upstream.next(bounded()))!.stream)), 's7'); // after 10 ms again, not 80
  assert.deepEqual(
    log.filter((line) => line.includes('retrying')).map((line) => line.replace(/.*retrying in /, '')),
    ['10 ms', '20 ms', '40 ms', '10 ms'],
  );
});

// ------------------------------------------------------------------ stalls

test('a response that stalls is destroyed with MKV_ERR_INPUT_STALLED', async (t) => {
  const o = await origin(t, (_req, res) => res.writeHead(200).write('abc'));
  const { upstream } = source(t, [`${o.base}/stall`], { idleTimeoutMs: 100 });
  // From before the request: the stall guard starts with the response, and the timer cannot
  // fire before it started (a start taken after next() would be late under load).
  const started = performance.now();
  const session = await upstream.next(bounded());
  const pieces: string[] = [];
  await assert.rejects(
    within(2000, (async () => {
      for await (const piece of session!.stream) pieces.push(String(piece));
    })(), 'stall'),
    { code: 'MKV_ERR_INPUT_STALLED', message: /sent nothing for 100 ms/ },
  );
  assert.deepEqual(pieces, ['abc']);
  assert.ok(performance.now() - started >= 90);
});

test('a reader that falls behind is not taken for a stalled upstream', async (t) => {
  const size = 1024 * 1024;
  const o = await origin(t, (_req, res) => res.writeHead(200).end(Buffer.alloc(size, 1)));
  const { upstream } = source(t, [`${o.base}/big`], { idleTimeoutMs: 80 });
  const session = await upstream.next(bounded());
  // The condition under test is time passing: five idle periods without reading.
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(session!.stream.destroyed, false);
  assert.equal((await within(2000, readAll(session!.stream), 'read')).length, size);
});

// ------------------------------------------------------------------ abort and close

test('aborting the signal rejects next() promptly, during a request and during a backoff', async (t) => {
  const silent = await origin(t, () => {});
  const { upstream } = source(t, [`${silent.base}/s`], { idleTimeoutMs: 10_000 });
  const controller = new AbortController();
  const pending = upstream.next(controller.signal);
  await silent.until('the request to arrive', () => silent.hits.length === 1);
  controller.abort();
  // Not aborted, it would wait out the 10 s idle timeout, then retry forever.
  await assert.rejects(within(2000, pending, 'abort in request'), { name: 'AbortError' });
  await silent.until('the aborted request to close its connection', () => silent.closed >= 1);

  const backingOff = source(t, [await refused()], { minBackoffMs: 10_000, maxBackoffMs: 10_000 });
  const again = new AbortController();
  const waiting = backingOff.upstream.next(again.signal);
  await backingOff.logged(/retrying in 10000 ms/);
  again.abort(new Error('enough'));
  await assert.rejects(within(2000, waiting, 'abort in backoff'), /enough/);
  await assert.rejects(backingOff.upstream.next(AbortSignal.abort()), { name: 'AbortError' });
});

test('close() resolves a pending next() with null, in a request and in a backoff', async (t) => {
  const silent = await origin(t, () => {});
  const { upstream } = source(t, [`${silent.base}/s`], { idleTimeoutMs: 10_000 });
  const pending = upstream.next(bounded());
  await silent.until('the request to arrive', () => silent.hits.length === 1);
  upstream.close();
  assert.equal(await within(2000, pending, 'close in request'), null);
  assert.equal(await upstream.next(bounded()), null);

  const backingOff = source(t, [await refused()], { minBackoffMs: 10_000, maxBackoffMs: 10_000 });
  const waiting = backingOff.upstream.next(bounded());
  await backingOff.logged(/retrying in 10000 ms/);
  backingOff.upstream.close();
  assert.equal(await within(2000, waiting, 'close in backoff'), null);
});

test('close() ends the current session', async (t) => {
  const o = await origin(t, (_req, res) => {
    res.writeHead(200);
    const timer = setInterval(() => res.write('tick'), 10);
    res.once('close', () => clearInterval(timer));
  });
  const { upstream } = source(t, [`${o.base}/live`]);
  const session = await upstream.next(bounded());
  await within(2000, once(session!.stream, 'data'), 'the first tick');
  session!.stream.resume();
  upstream.close();
  await within(2000, once(session!.stream, 'close'), 'session closed');
  await o.until('the upstream connection to close', () => o.closed >= 1);
});
