// The HTTP surface of one public port, against a looping master: status codes, methods,
// HEAD, suffixes, GET / for players and for browsers, CORS, /stats, malformed requests.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { collect, collectWatching, makeClip, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import {
  errorsIgnoringCut,
  getStats,
  rawExchange,
  request,
  stopQuietly,
  waitForStats,
  waitForStream,
} from './helpers/live.js';

const EBML_MAGIC = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
const NAME = 'cam';

describe('HTTP surface', () => {
  let master: RunningMaster;

  before(async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    master = await startMaster([clip, '--loop', '--name', NAME, '--edges', '2']);
    await waitForStream(master, NAME);
  });

  after(() => stopQuietly(master));

  it('GET /live/<name>: 200, video/webm, no Content-Length, not cached, CORS, body starts with EBML', { timeout: 20_000 }, async () => {
    const got = await collect(master.url(`/live/${NAME}`), { bytes: 50_000, ms: 5000 });
    assert.equal(got.status, 200);
    assert.equal(got.headers['content-type'], 'video/webm');
    assert.equal(got.headers['content-length'], undefined);
    assert.match(String(got.headers['cache-control']), /no-cache|no-store/);
    assert.equal(got.headers['access-control-allow-origin'], '*');
    assert.equal(got.bytes, 50_000);
    const { readFile } = await import('node:fs/promises');
    assert.deepEqual((await readFile(got.file)).subarray(0, 4), EBML_MAGIC);
  });

  for (const suffix of ['.webm', '.mkv']) {
    it(`GET /live/<name>${suffix} serves the same stream`, { timeout: 20_000 }, async () => {
      const got = await collect(master.url(`/live/${NAME}${suffix}`), { bytes: 20_000, ms: 5000 });
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-type'], 'video/webm', 'Content-Type follows the DocType, not the suffix');
      assert.equal(got.bytes, 20_000);
    });
  }

  it('a query string is ignored: /live/<name>?t=1 serves the stream', { timeout: 20_000 }, async () => {
    const got = await collect(master.url(`/live/${NAME}?t=1`), { bytes: 10_000, ms: 5000 });
    assert.equal(got.status, 200);
  });

  it('HEAD /live/<name>: the stream headers and not one body byte; the connection closes', { timeout: 20_000 }, async () => {
    const raw = await rawExchange(master.port, `HEAD /live/${NAME} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const end = raw.indexOf('\r\n\r\n');
    assert.ok(end > 0, raw);
    assert.match(raw, /^HTTP\/1\.1 200 /);
    assert.match(raw, /\r\nContent-Type: video\/webm\r\n/i);
    assert.match(raw, /\r\nAccess-Control-Allow-Origin: \*\r\n/i);
    assert.equal(raw.length, end + 4, `bytes after the head: ${raw.length - end - 4}`);
  });

  for (const path of ['/live/nope', '/live/nope.webm', '/nothing-here']) {
    it(`GET ${path}: 404, with CORS`, { timeout: 10_000 }, async () => {
      const reply = await request(master.url(path));
      assert.equal(reply.status, 404);
      assert.equal(reply.headers['access-control-allow-origin'], '*');
    });
  }

  for (const method of ['DELETE', 'PATCH', 'OPTIONS']) {
    it(`${method} /live/<name>: 405 with Allow: GET, HEAD, PUT, POST`, { timeout: 10_000 }, async () => {
      const reply = await request(master.url(`/live/${NAME}`), { method });
      assert.equal(reply.status, 405);
      const allow = String(reply.headers.allow).split(',').map((m) => m.trim());
      assert.deepEqual(allow.sort(), ['GET', 'HEAD', 'POST', 'PUT'], `Allow: ${reply.headers.allow}`);
    });
  }

  for (const method of ['POST', 'PUT']) {
    it(`${method} /live/<name> of a configured input: 409, the input keeps playing`, { timeout: 10_000 }, async () => {
      const reply = await request(master.url(`/live/${NAME}`), { method, body: Buffer.from('not a stream') });
      assert.equal(reply.status, 409);
      assert.equal((await request(master.url(`/live/${NAME}`), { method: 'HEAD' })).status, 200);
    });
  }

  it('GET / from a browser (Accept: text/html) gets an HTML page that links the stream', { timeout: 10_000 }, async () => {
    const reply = await request(master.url('/'), {
      headers: { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /^text\/html/);
    assert.match(reply.body.toString(), /<html/i);
    assert.match(reply.body.toString(), new RegExp(`/live/${NAME}`));
  });

  for (const accept of [undefined, '*/*']) {
    it(`GET / from a media player (Accept: ${accept ?? 'none'}) gets the single stream`, { timeout: 20_000 }, async () => {
      const got = await collect(master.url('/'), { bytes: 20_000, ms: 5000, ...(accept ? { headers: { Accept: accept } } : {}) });
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-type'], 'video/webm');
      assert.equal(got.bytes, 20_000);
    });
  }

  it('GET /stats: JSON with players, playersByStream, pids, capacity, rejected, skips, kicked; CORS', { timeout: 10_000 }, async () => {
    const reply = await request(master.url('/stats'));
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['content-type']), /application\/json/);
    assert.equal(reply.headers['access-control-allow-origin'], '*');
    const s = await waitForStats(master, 'stats');
    for (const key of ['players', 'capacity', 'rejected', 'skips', 'kicked']) {
      assert.equal(typeof (s as unknown as Record<string, unknown>)[key], 'number', key);
    }
    assert.equal(typeof s.playersByStream, 'object');
    assert.equal(s.capacity, 2 * 16);
    assert.equal(s.pids.master, master.proc.pid);
    assert.equal(s.pids.edges.length, 2);
  });

  it('malformed requests get 400 (or 431/505) and do not disturb a player watching meanwhile', { timeout: 30_000 }, async () => {
    const player = collectWatching(master.url(`/live/${NAME}`), { ms: 4000 });
    await player.firstByte; // it watches before the bad requests come
    const bad: [string | Buffer, RegExp][] = [
      ['GARBAGE\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET /live/cam\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET /live/cam HTTP/1.1\r\nNo colon here\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET /live/%zz HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
      [Buffer.concat([randomish(200), Buffer.from('\r\n\r\n')]), /^HTTP\/1\.1 400 /],
      [`GET /live/cam HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      ['GET /live/cam HTTP/2.0\r\n\r\n', /^HTTP\/1\.1 505 /],
    ];
    for (const [bytes, status] of bad) {
      const raw = await rawExchange(master.port, bytes);
      assert.match(raw, status, `answer to ${JSON.stringify(bytes.toString('latin1').slice(0, 40))}: ${raw.slice(0, 80)}`);
    }
    const got = await player.result;
    assert.equal(got.status, 200);
    assert.equal(got.end, 'ms', 'the player should still be connected');
    // 4 s of a ~500 kbit/s stream, less the part of the first GOP before it joined.
    assert.ok(got.bytes > 120_000, `the player got only ${got.bytes} bytes in 4 s`);
    const p = await probe(got.file);
    assert.equal(errorsIgnoringCut(p), '');
    assert.equal(p.firstVideoKey, true);
    const s = await getStats(master);
    assert.equal(s.restarts ?? 0, 0, 'no edge restarted');
  });

  it('a client that sends nothing is closed by the server in time, and players keep flowing', { timeout: 30_000 }, async () => {
    // The edge gives a request head 10 s; allow some slack.
    const raw = await rawExchange(master.port, Buffer.alloc(0), 15_000);
    assert.doesNotMatch(raw, /^HTTP\/1\.1 200/);
    const got = await collect(master.url(`/live/${NAME}`), { bytes: 10_000, ms: 5000 });
    assert.equal(got.status, 200);
  });
});

/** Bytes that are not a request line (no spaces, no CR/LF). */
function randomish(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = 0x80 + ((i * 37) % 120);
  return out;
}

describe('/stats right after start', () => {
  // Regression: until the master's first stats broadcast (1 s after listening) an edge
  // answers /stats with only its own counters ({ edge: … }), without pids or capacity.
  it('answers the documented shape as soon as the master listens', { timeout: 20_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    let master: RunningMaster | undefined;
    try {
      master = await startMaster([clip, '--loop', '--edges', '1']);
      const reply = await request(master.url('/stats'));
      assert.equal(reply.status, 200);
      const s = JSON.parse(reply.body.toString()) as Record<string, unknown>;
      for (const key of ['players', 'playersByStream', 'pids', 'capacity', 'rejected', 'skips', 'kicked']) {
        assert.ok(key in s, `/stats lacks '${key}': ${reply.body.toString()}`);
      }
    } finally {
      await stopQuietly(master);
    }
  });
});
