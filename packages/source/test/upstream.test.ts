import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { UsageError } from '@mkvcast/shared';
import { UpstreamSource, type UpstreamOptions } from '../src/inputs/upstream.js';

// ------------------------------------------------------------------ a tiny origin

interface Hit {
  path: string;
  at: number;
  headers: IncomingHttpHeaders;
}

interface Origin {
  base: string;
  hits: Hit[];
  /** Server-side connections closed so far. */
  closed: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

/** An HTTP server on 127.0.0.1 port 0, closed (connections and all) when the test ends. */
async function origin(t: TestContext, handle: Handler): Promise<Origin> {
  const server = createServer();
  const state: Origin = { base: '', hits: [], closed: 0 };
  server.on('connection', (socket) => socket.once('close', () => state.closed++));
  server.on('request', (req, res) => {
    state.hits.push({ path: req.url ?? '', at: performance.now(), headers: req.headers });
    handle(req, res, state.hits.length);
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

function source(t: TestContext, urls: string[], options: UpstreamOptions = {}): { upstream: UpstreamSource; log: string[] } {
  const log: string[] = [];
  const upstream = new UpstreamSource(urls, { minBackoffMs: 20, maxBackoffMs: 80, idleTimeoutMs: 2000, log: (line) => log.push(line), ...options });
  t.after(() => upstream.close());
  return { upstream, log };
}

/** Every wait in these tests is bounded by this signal. */
const bounded = (ms = 3000): AbortSignal => AbortSignal.timeout(ms);

async function readAll(stream: Readable): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Answers 200 with `body` written in pieces, then ends. */
const streams =
  (...pieces: string[]): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'video/webm' });
    let i = 0;
    const step = (): void => {
      if (i === pieces.length) return void res.end();
      res.write(pieces[i++]);
      setTimeout(step, 5);
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

test('fails over in order, starting from the first URL every round', async (t) => {
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
  const flaky = await origin(t, (req, res, hit) => (hit <= 5 ? res.writeHead(503).end() : streams('up')(req, res, hit)));
  const { upstream, log } = source(t, [`${flaky.base}/f`], { minBackoffMs: 20, maxBackoffMs: 80 });
  const session = await upstream.next(bounded());
  assert.equal(session?.label, `${flaky.base}/f (attempt 6)`);
  const gaps = flaky.hits.slice(1).map((hit, i) => hit.at - flaky.hits[i]!.at);
  const waits = [20, 40, 80, 80, 80];
  gaps.forEach((gap, i) => {
    assert.ok(gap >= waits[i]! - 2, `gap ${i} was ${gap.toFixed(1)} ms, wanted ${waits[i]}`);
    assert.ok(gap < waits[i]! + 150, `gap ${i} was ${gap.toFixed(1)} ms, wanted about ${waits[i]}`);
  });
  assert.deepEqual(
    log.filter((line) => line.includes('retrying')),
    waits.map((ms) => `the upstream failed; retrying in ${ms} ms`),
  );
});

test('reconnects at once after a session that delivered data; waits after one that delivered nothing', async (t) => {
  const o = await origin(t, (req, res, hit) => (hit === 2 ? res.writeHead(200).end() : streams(`data ${hit}`)(req, res, hit)));
  const { upstream, log } = source(t, [`${o.base}/x`], { minBackoffMs: 150, maxBackoffMs: 1000 });

  const one = await upstream.next(bounded());
  assert.equal(String(await readAll(one!.stream)), 'data 1');
  let started = performance.now();
  const two = await upstream.next(bounded());
  assert.ok(performance.now() - started < 120, 'no wait after a session with data');
  assert.equal((await readAll(two!.stream)).length, 0);
  started = performance.now();
  const three = await upstream.next(bounded());
  assert.ok(performance.now() - started >= 145, 'a session without data is followed by the backoff');
  assert.equal(String(await readAll(three!.stream)), 'data 3');
  assert.match(log.at(-1)!, /delivered nothing; retrying in 150 ms/);
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
  const session = await upstream.next(bounded());
  const pieces: string[] = [];
  const started = performance.now();
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
  await sleep(400); // five idle periods without reading
  assert.equal(session!.stream.destroyed, false);
  assert.equal((await within(2000, readAll(session!.stream), 'read')).length, size);
});

// ------------------------------------------------------------------ abort and close

test('aborting the signal rejects next() promptly, during a request and during a backoff', async (t) => {
  const silent = await origin(t, () => {});
  const { upstream } = source(t, [`${silent.base}/s`], { idleTimeoutMs: 10_000 });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const started = performance.now();
  await assert.rejects(upstream.next(controller.signal), { name: 'AbortError' });
  assert.ok(performance.now() - started < 500);
  await within(1000, (async () => {
    while (silent.closed < 1) await sleep(5);
  })(), 'the aborted request closes its connection');

  const waiting = source(t, [await refused()], { minBackoffMs: 10_000, maxBackoffMs: 10_000 }).upstream;
  const again = new AbortController();
  setTimeout(() => again.abort(new Error('enough')), 50);
  await assert.rejects(within(500, waiting.next(again.signal), 'abort in backoff'), /enough/);
  await assert.rejects(waiting.next(AbortSignal.abort()), { name: 'AbortError' });
});

test('close() resolves a pending next() with null, in a request and in a backoff', async (t) => {
  const silent = await origin(t, () => {});
  const { upstream } = source(t, [`${silent.base}/s`], { idleTimeoutMs: 10_000 });
  const pending = upstream.next(bounded());
  await sleep(50);
  upstream.close();
  assert.equal(await within(500, pending, 'close in request'), null);
  assert.equal(await upstream.next(bounded()), null);

  const backingOff = source(t, [await refused()], { minBackoffMs: 10_000, maxBackoffMs: 10_000 }).upstream;
  const waiting = backingOff.next(bounded());
  await sleep(50);
  backingOff.close();
  assert.equal(await within(500, waiting, 'close in backoff'), null);
});

test('close() ends the current session', async (t) => {
  const o = await origin(t, (_req, res) => {
    res.writeHead(200);
    const timer = setInterval(() => res.write('tick'), 10);
    res.once('close', () => clearInterval(timer));
  });
  const { upstream } = source(t, [`${o.base}/live`]);
  const session = await upstream.next(bounded());
  session!.stream.resume();
  await sleep(30);
  upstream.close();
  await within(1000, once(session!.stream, 'close'), 'session closed');
  await within(1000, (async () => {
    while (o.closed < 1) await sleep(5);
  })(), 'the upstream connection closed');
});
