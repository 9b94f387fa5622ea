// Hooks and tokens against a real master: hook servers (node:http on port 0) that accept,
// refuse or never answer on_play and on_publish, the order and fields of the four events
// for a publish-and-play session, and JWT play/publish tokens (HS256, RS256 from a PEM file).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { collect, collectWatching, makeClip } from './helpers/media.js';
import { runMaster, startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, logMessages, request, stopQuietly, waitFor, waitForStream, type Reply } from './helpers/live.js';
import { chunkedUpload, liveList, waitForPublished } from './helpers/ingest.js';

interface HookEvent {
  action: string;
  stream: string;
  clientId: string;
  ip: string | null;
  query: Record<string, string>;
  userAgent: string | null;
  bytes?: number;
  durationMs?: number;
  reason?: string;
}

type Answer = number | 'hang' | Promise<number>;

/** A hook server: records each event, answers it with `answer(event)`: a status, later (a promise), or never ('hang'). */
class HookServer {
  readonly events: HookEvent[] = [];
  /** What each admission call was answered, by client id ('hang': never). */
  readonly answered = new Map<string, number | 'hang'>();
  answer: (event: HookEvent) => Answer = () => 204;
  readonly #server = http.createServer((req, res) => this.#onRequest(req, res));
  readonly #waiters = new Set<() => void>();
  readonly #hung = new Set<http.ServerResponse>();

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(action: string): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/${action}`;
  }

  /** The first event (from index `from` on) that `match` accepts, once it has come. */
  async next(what: string, match: (e: HookEvent) => boolean, from = 0, timeoutMs = 10_000): Promise<HookEvent> {
    const found = (): HookEvent | undefined => this.events.slice(from).find(match);
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    try {
      return await new Promise<HookEvent>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no ${what} hook call within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`)), timeoutMs);
        wake = () => {
          const event = found();
          if (event) resolve(event);
        };
        this.#waiters.add(wake);
        wake();
      });
    } finally {
      clearTimeout(timer);
      if (wake) this.#waiters.delete(wake);
    }
  }

  async close(): Promise<void> {
    for (const res of this.#hung) res.destroy();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as HookEvent;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, `/${event.action}`, 'each hook is called at its own URL');
      this.events.push(event);
      for (const wake of this.#waiters) wake();
      const answer = this.answer(event);
      const admission = event.action === 'on_play' || event.action === 'on_publish';
      if (answer === 'hang') {
        if (admission) this.answered.set(event.clientId, 'hang');
        this.#hung.add(res);
        res.once('close', () => this.#hung.delete(res));
        return;
      }
      void Promise.resolve(answer).then((status) => {
        if (admission) this.answered.set(event.clientId, status);
        if (!res.destroyed) res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
      });
    });
  }
}

/**
 * A player on a bare connection: reads `bytes` of the answer (head included), then resets the
 * connection (RST). Resolves with the answer's head.
 */
function rawPlayer(port: number, target: string, headers: Record<string, string>, bytes: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${target}: ${got} of ${bytes} bytes within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got < bytes) return;
      clearTimeout(timer);
      socket.resetAndDestroy();
      const all = Buffer.concat(chunks).toString('latin1');
      resolve(all.slice(0, all.indexOf('\r\n\r\n')));
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (got < bytes) reject(new Error(`${target}: closed after ${got} of ${bytes} bytes: ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`));
    });
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines}\r\n`);
  });
}

/** The JSON error body every refusal carries. */
function errorCode(reply: { body: Buffer | string }): string {
  const text = reply.body.toString();
  try {
    return (JSON.parse(text) as { error: { code: string } }).error.code;
  } catch {
    return `not a JSON error: ${text.slice(0, 200)}`;
  }
}

describe('the on_play hook decides who plays (--hooks-on-play, --hooks-timeout 2)', () => {
  let hooks: HookServer;
  let master: RunningMaster | undefined;

  before(async () => {
    hooks = await new HookServer().listen();
    const clip = await makeClip('webm-vp8-opus', { seconds: 4 });
    master = await startMaster([
      clip, '--name', 'cam', '--loop', '--edges', '2',
      '--hooks-on-play', hooks.url('on_play'), '--hooks-on-stop', hooks.url('on_stop'), '--hooks-timeout', '2',
    ]);
    await waitForStream(master, 'cam', 8000);
  });

  after(async () => {
    await stopQuietly(master);
    await hooks.close();
  });

  for (const status of [403, 500]) {
    it(`a hook answering ${status} turns the player away with 403 and no stream byte`, async () => {
      hooks.answer = () => status;
      const from = hooks.events.length;
      const reply = await request(master!.url('/live/cam?room=blue&x=1'), { headers: { 'User-Agent': 'hook-test/1.0' } });
      assert.equal(reply.status, 403, reply.body.toString());
      assert.equal(reply.headers['content-type'], 'application/json');
      assert.equal(errorCode(reply), 'MKV_ERR_HOOK_REFUSED');
      assert.ok(!reply.body.includes(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])), 'no EBML header in the answer');
      const event = await hooks.next('on_play', (e) => e.action === 'on_play', from);
      assert.equal(event.stream, 'cam');
      assert.deepEqual(event.query, { room: 'blue', x: '1' });
      assert.equal(event.userAgent, 'hook-test/1.0');
      assert.match(event.ip ?? '', /127\.0\.0\.1/);
      assert.match(event.clientId, /^[0-9a-f-]{36}$/);
    });
  }

  it('a hook answering 2xx lets the player in, and it receives the stream; on_stop follows when it leaves', async () => {
    hooks.answer = () => 200;
    const from = hooks.events.length;
    const got = await collect(master!.url('/live/cam'), { bytes: 64 * 1024, ms: 10_000 });
    assert.equal(got.status, 200);
    assert.equal(got.bytes, 64 * 1024, `the player got ${got.bytes} bytes (${got.end})`);
    // The looping stream flows: the edge notices the close at its next write.
    const played = await hooks.next('on_play', (e) => e.action === 'on_play', from);
    const stopped = await hooks.next('on_stop', (e) => e.action === 'on_stop' && e.clientId === played.clientId, from);
    assert.ok(stopped.bytes! >= 64 * 1024, `on_stop bytes: ${stopped.bytes}`);
    assert.equal(stopped.reason, 'client closed');
  });

  it('the player waits for the answer: no stream byte before the hook said yes', async () => {
    let release!: (status: number) => void;
    hooks.answer = (e) => (e.action === 'on_play' ? new Promise<number>((resolve) => (release = resolve)) : 204);
    const from = hooks.events.length;
    let fed = false;
    const player = collectWatching(master!.url('/live/cam'), { bytes: 32 * 1024, ms: 10_000 });
    void player.firstByte.then(() => (fed = true), () => undefined);
    await hooks.next('on_play', (e) => e.action === 'on_play', from);
    await sleep(300); // the hook thinks (within the 2 s timeout); nothing may reach the player meanwhile
    assert.equal(fed, false, 'a stream byte reached the player before the hook answered');
    release(204);
    await player.firstByte;
    const got = await player.result;
    assert.equal(got.status, 200);
    assert.equal(got.bytes, 32 * 1024);
  });

  it('a hook that never answers turns the player away after --hooks-timeout', async () => {
    hooks.answer = (e) => (e.action === 'on_play' ? 'hang' : 204);
    const t0 = performance.now();
    const reply = await request(master!.url('/live/cam'), { timeoutMs: 8000 });
    const ms = performance.now() - t0;
    assert.equal(reply.status, 403, reply.body.toString());
    assert.equal(errorCode(reply), 'MKV_ERR_HOOK_FAILED');
    assert.ok(ms >= 1900, `refused after ${ms.toFixed(0)} ms: before the 2 s timeout`);
    await waitFor('the refusal logged', () => logMessages(master!.stderr()).some((l) => /^edge-\d+: refused GET \/live\/cam from \S+: 403 the on_play hook did not answer within 2 s/.test(l)), 5000, 20);
  });

  it('HEAD asks for no stream: the hook does not hear of it', async () => {
    hooks.answer = () => 403;
    const from = hooks.events.length;
    const reply = await request(master!.url('/live/cam'), { method: 'HEAD' });
    assert.equal(reply.status, 200);
    assert.deepEqual(hooks.events.slice(from).filter((e) => e.action === 'on_play'), []);
    assertNoStack(master!.stderr());
  });

  it('a player that leaves while the hook thinks still gets its on_stop once the hook said yes; refused ones get none', async () => {
    let release!: (status: number) => void;
    hooks.answer = (e) => (e.action === 'on_play' ? new Promise<number>((resolve) => (release = resolve)) : 204);
    const from = hooks.events.length;
    const socket = net.connect(master!.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('GET /live/cam HTTP/1.1\r\nHost: x\r\n\r\n');
    const asked = await hooks.next('on_play', (e) => e.action === 'on_play', from);
    await new Promise<void>((resolve) => socket.destroy().once('close', () => resolve()));
    release(200);
    const stopped = await hooks.next('on_stop', (e) => e.action === 'on_stop' && e.clientId === asked.clientId, from);
    // Its request stays half-open on the edge until a write fails: a few bytes may have gone out.
    assert.equal(typeof stopped.bytes, 'number');
    assert.equal(stopped.reason, 'client closed');
    // Every on_stop so far belongs to a player whose on_play was answered 2xx.
    for (const stop of hooks.events.filter((e) => e.action === 'on_stop')) {
      const answer = hooks.answered.get(stop.clientId);
      assert.ok(typeof answer === 'number' && answer < 300, `on_stop for a player answered ${answer}: ${JSON.stringify(stop)}`);
    }
  });
});

describe('the four hooks of a publish-and-play session (publish-only master)', () => {
  const KEY = 'k1';
  let hooks: HookServer;
  let master: RunningMaster | undefined;
  let data: Buffer;

  before(async () => {
    hooks = await new HookServer().listen();
    data = await readFile(await makeClip('webm-vp8-opus', { seconds: 4 }));
    master = await startMaster([
      '--edges', '2', '--publish-key', KEY, '--grace', '1',
      '--hooks-on-publish', hooks.url('on_publish'), '--hooks-on-unpublish', hooks.url('on_unpublish'),
      '--hooks-on-play', hooks.url('on_play'), '--hooks-on-stop', hooks.url('on_stop'),
    ]);
  });

  after(async () => {
    await stopQuietly(master);
    await hooks.close();
  });

  it('an on_publish refusal turns the publisher away with 403, and no stream appears', async () => {
    const m = master!;
    hooks.answer = (e) => (e.action === 'on_publish' && e.stream === 'denied' ? 403 : 204);
    const from = hooks.events.length;
    const reply = await request(m.url(`/live/denied?key=${KEY}&site=7`), { method: 'PUT', body: data.subarray(0, 64 * 1024) });
    assert.equal(reply.status, 403, reply.body.toString());
    assert.equal(errorCode(reply), 'MKV_ERR_HOOK_REFUSED');
    const event = await hooks.next('on_publish', (e) => e.action === 'on_publish', from);
    assert.equal(event.stream, 'denied');
    assert.deepEqual(event.query, { key: KEY, site: '7' });
    assert.equal((await request(m.url('/live/denied'))).status, 404, 'a refused publisher must not create its stream');
    assert.ok(!(await liveList(m.url(''))).streams.some((s) => s.name === 'denied'), 'GET /live/ lists a refused stream');
  });

  it('on_publish → on_play → on_stop (bytes, durationMs, reason) → on_unpublish, in order, for one session', { timeout: 40_000 }, async () => {
    const m = master!;
    hooks.answer = () => 204;
    const from = hooks.events.length;
    let endUpload!: () => void;
    const held = new Promise<void>((resolve) => (endUpload = resolve));
    const upload = chunkedUpload(m.url(`/live/show?key=${KEY}`), data, { seconds: 2, method: 'PUT', holdEnd: held, headers: { 'User-Agent': 'publisher/2' } });
    const published = await hooks.next('on_publish', (e) => e.action === 'on_publish', from);
    await waitForPublished(m, 'show', upload);
    // The player resets its connection: the stream may be idle by now (the upload is held open),
    // and an edge notices a plain close (FIN) only at its next write to the player.
    const head = await rawPlayer(m.port, '/live/show?viewer=7', { 'User-Agent': 'viewer/3' }, 20_000);
    assert.match(head, /^HTTP\/1\.1 200 /);
    const stopped = await hooks.next('on_stop', (e) => e.action === 'on_stop', from);
    endUpload();
    const answer = await upload;
    assert.equal(answer.status, 200, answer.error ?? answer.body);
    const unpublished = await hooks.next('on_unpublish', (e) => e.action === 'on_unpublish', from);

    const session = hooks.events.slice(from);
    assert.deepEqual(session.map((e) => e.action), ['on_publish', 'on_play', 'on_stop', 'on_unpublish'], JSON.stringify(session));
    assert.ok(session.every((e) => e.stream === 'show'));
    const played = session[1]!;
    assert.deepEqual(
      { ...published, clientId: '' },
      { action: 'on_publish', stream: 'show', clientId: '', ip: published.ip, query: { key: KEY }, userAgent: 'publisher/2' },
    );
    assert.match(published.ip ?? '', /127\.0\.0\.1/);
    assert.deepEqual(played.query, { viewer: '7' });
    assert.equal(played.userAgent, 'viewer/3');
    assert.notEqual(played.clientId, published.clientId);
    // The stop events carry their client's id, what went through and how long it lasted.
    assert.equal(stopped.clientId, played.clientId);
    assert.ok(stopped.bytes! >= 20_000, `on_stop bytes: ${stopped.bytes}`);
    assert.ok(typeof stopped.durationMs === 'number' && stopped.durationMs >= 0, `on_stop durationMs: ${stopped.durationMs}`);
    assert.equal(stopped.reason, 'client closed');
    assert.ok(stopped.durationMs! < 10_000, `on_stop durationMs: ${stopped.durationMs}`);
    assert.equal(unpublished.clientId, published.clientId);
    assert.ok(unpublished.bytes! >= data.length, `on_unpublish bytes: ${unpublished.bytes} of ${data.length} sent`);
    assert.ok(unpublished.durationMs! >= 1500, `on_unpublish durationMs: ${unpublished.durationMs} (the upload took 2 s)`);
    assert.equal(unpublished.reason, 'publisher ended the upload');
    assert.ok(!hooks.events.some((e) => e.action === 'on_unpublish' && e.stream === 'denied'), 'a refused publisher has no on_unpublish');
    assertNoStack(m.stderr());
  });
});

const SECRET = 'a long shared secret for HS256 tokens';

function hs256(claims: JWTPayload, secret = SECRET, exp: string | number = '10m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

function rs256(claims: JWTPayload, key: CryptoKey): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('10m').sign(key);
}

describe('JWT play and publish tokens (--jwt-secret and --jwt-key)', () => {
  const KEY = 'pubkey';
  let master: RunningMaster | undefined;
  let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
  let data: Buffer;

  before(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-jwt-'));
    const pem = path.join(dir, 'public.pem');
    await writeFile(pem, await exportSPKI(rsa.publicKey));
    const clip = await makeClip('webm-vp8-opus', { seconds: 4 });
    data = await readFile(clip);
    master = await startMaster([clip, '--name', 'cam', '--loop', '--publish-key', KEY, '--jwt-secret', SECRET, '--jwt-key', pem]);
    const token = await hs256({ stream: 'cam' });
    // waitForStream's HEAD needs a token here too.
    await waitForStream({ url: (p: string) => master!.url(`${p}?token=${token}`) }, 'cam', 8000);
  });

  after(() => stopQuietly(master));

  /** A short GET: the status, the error code if refused, the bytes if it played. */
  async function play(query: string, headers: Record<string, string> = {}): Promise<{ status: number; code: string | null; bytes: number }> {
    const got = await collect(master!.url(`/live/cam${query}`), { bytes: 16 * 1024, ms: 8000, headers });
    const body = got.status === 200 ? null : await readFile(got.file);
    return { status: got.status, code: body ? errorCode({ body }) : null, bytes: got.bytes };
  }

  it('a valid HS256 token lets a player in, by ?token= and by Authorization: Bearer', async () => {
    const token = await hs256({ stream: 'cam' });
    assert.deepEqual(await play(`?token=${token}`), { status: 200, code: null, bytes: 16 * 1024 });
    assert.deepEqual(await play('', { Authorization: `Bearer ${token}` }), { status: 200, code: null, bytes: 16 * 1024 });
    assert.deepEqual(await play(`?token=${await hs256({ stream: '*' })}`), { status: 200, code: null, bytes: 16 * 1024 });
  });

  it('no token: 401 with a Bearer challenge', async () => {
    const reply = await request(master!.url('/live/cam'));
    assert.equal(reply.status, 401);
    assert.equal(errorCode(reply), 'MKV_ERR_TOKEN_MISSING');
    assert.match(String(reply.headers['www-authenticate']), /^Bearer /);
  });

  it('an expired token is refused with 401', async () => {
    const expired = await hs256({ stream: 'cam' }, SECRET, Math.floor(Date.now() / 1000) - 30);
    const got = await play(`?token=${expired}`);
    assert.equal(got.status, 401);
    assert.equal(got.code, 'MKV_ERR_TOKEN_EXPIRED');
  });

  it('a token for another stream is refused with 403', async () => {
    const other = await hs256({ stream: 'other' });
    const got = await play(`?token=${other}`);
    assert.equal(got.status, 403);
    assert.equal(got.code, 'MKV_ERR_TOKEN_FORBIDDEN');
  });

  it('a token signed with another secret, or another RSA key, is refused with 401', async () => {
    const forged = await hs256({ stream: 'cam' }, 'not the secret');
    const stranger = (await generateKeyPair('RS256')).privateKey;
    for (const token of [forged, await rs256({ stream: 'cam' }, stranger)]) {
      const got = await play(`?token=${token}`);
      assert.equal(got.status, 401);
      assert.equal(got.code, 'MKV_ERR_TOKEN_INVALID');
    }
  });

  it('an RS256 token signed with the private half of the --jwt-key PEM file lets a player in', async () => {
    const token = await rs256({ stream: ['x', 'cam'] }, rsa.privateKey);
    assert.deepEqual(await play('', { Authorization: `Bearer ${token}` }), { status: 200, code: null, bytes: 16 * 1024 });
  });

  it('publishers need the key, or a token with publish: true', async () => {
    const m = master!;
    const body = data.subarray(0, 64 * 1024);
    const put = (query: string, headers: Record<string, string> = {}): Promise<Reply> => request(m.url(`/live/up${query}`), { method: 'PUT', body, headers });
    const none = await put('');
    assert.equal(none.status, 401, none.body.toString());
    assert.equal(errorCode(none), 'MKV_ERR_TOKEN_MISSING');
    const playOnly = await put(`?token=${await hs256({ stream: 'up' })}`);
    assert.equal(playOnly.status, 403, playOnly.body.toString());
    assert.equal(errorCode(playOnly), 'MKV_ERR_TOKEN_FORBIDDEN');
    const wrongKey = await put('?key=nope');
    assert.equal(wrongKey.status, 403);
    const whole = async (name: string, query: string, headers: Record<string, string> = {}): Promise<Reply> =>
      request(m.url(`/live/${name}${query}`), { method: 'PUT', body: data, headers, timeoutMs: 20_000 });
    // The whole clip in one PUT: answered 200 once the body has been ingested.
    const byKey = await whole('up1', `?key=${KEY}`);
    assert.equal(byKey.status, 200, `publish with the key: ${byKey.body.toString()}`);
    const byToken = await whole('up2', '', { Authorization: `Bearer ${await hs256({ stream: 'up2', publish: true })}` });
    assert.equal(byToken.status, 200, `publish with a token: ${byToken.body.toString()}`);
  });
});

describe('hook and token options are checked at start', () => {
  it('a hook URL that is not http(s), a bad timeout, a missing or bad --jwt-key: exit 2 with one line', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-jwt-bad-'));
    const notKey = path.join(dir, 'not-a-key.pem');
    await writeFile(notKey, 'hello\n');
    const cases: [string[], RegExp][] = [
      [['--hooks-on-play', 'ftp://example/'], /--hooks-on-play must be an http:\/\/ or https:\/\/ URL/],
      [['--hooks-timeout', '0'], /--hooks-timeout must be a number from 0.001 to 600, not 0/],
      [['--jwt-key', path.join(dir, 'missing.pem')], /cannot read --jwt-key .*missing\.pem/],
      [['--jwt-key', notKey], /is not a PEM RSA public key/],
      [['--jwt-jwks', 'not a url'], /--jwt-jwks must be an http:\/\/ or https:\/\/ URL/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await runMaster(args);
      assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
      assertNoStack(stderr);
    }
  });
});

describe('a slow hook server cannot pile up calls: 256 on_play calls in flight per edge, then 503', () => {
  let hooks: HookServer;
  let master: RunningMaster | undefined;
  const sockets: net.Socket[] = [];

  before(async () => {
    hooks = await new HookServer().listen();
    hooks.answer = () => 'hang';
    const clip = await makeClip('webm-vp8-opus', { seconds: 4 });
    master = await startMaster([clip, '--name', 'cam', '--loop', '--edges', '1', '--clients-per-edge', '400', '--hooks-on-play', hooks.url('on_play'), '--hooks-timeout', '20']);
    await waitForStream(master, 'cam', 8000);
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await stopQuietly(master);
    await hooks.close();
  });

  it('the 257th waiting player is refused at once with MKV_ERR_HOOKS_BUSY; the hook never hears of it', { timeout: 40_000 }, async () => {
    const m = master!;
    for (let i = 0; i < 256; i++) {
      const socket = net.connect(m.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(`GET /live/cam?n=${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
      sockets.push(socket);
    }
    await hooks.next('the 256th on_play', () => hooks.events.length >= 256, 0, 20_000);
    const t0 = performance.now();
    const reply = await request(m.url('/live/cam?n=256'), { timeoutMs: 5000 });
    const ms = performance.now() - t0;
    assert.equal(reply.status, 503, reply.body.toString());
    assert.equal(errorCode(reply), 'MKV_ERR_HOOKS_BUSY');
    assert.ok(reply.headers['retry-after'], 'a 503 says when to come back');
    assert.ok(ms < 5000, `answered after ${ms.toFixed(0)} ms, not at the 20 s hook timeout`);
    assert.equal(hooks.events.length, 256, 'the refused player never reached the hook');
    // The edge's log line may reach the master's stderr just after the answer.
    await waitFor('the refusal logged', () => logMessages(m.stderr()).some((l) => /^edge-1: refused GET \/live\/cam from \S+: 503 too many on_play hook calls/.test(l)), 5000, 20);
  });
});
