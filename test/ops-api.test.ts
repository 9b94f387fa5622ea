// The Control API (/api/v1/) and /metrics against real masters: the players the API lists are
// the connections really open, DELETE closes exactly one of them, the token is enforced, a full
// edge still answers, /metrics is valid Prometheus text whose counters rise with traffic and
// whose process metrics name every process, and a published stream can be cut.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { ClientInfo } from '@mkvcast/shared';
import { makeClip } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { request, stopQuietly, streamName, waitFor, waitForStream, type Reply } from './helpers/live.js';
import { chunkedUpload, waitForPublished } from './helpers/ingest.js';

const TOKEN = 'a-token-for-the-tests';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

/** A player the test holds open: counts what it receives, knows when its connection ends. */
interface TestPlayer {
  userAgent: string;
  bytes: number;
  status: number;
  closed: Promise<void>;
  isClosed: () => boolean;
  stop: () => void;
}

function openPlayer(url: string, userAgent: string): Promise<TestPlayer> {
  return new Promise((resolve, reject) => {
    let closed = false;
    let markClosed!: () => void;
    const closedPromise = new Promise<void>((r) => (markClosed = r));
    const req = http.get(url, { agent: false, headers: { 'User-Agent': userAgent } });
    const onEnd = (): void => {
      closed = true;
      markClosed();
    };
    req.once('error', (err) => (closed ? undefined : reject(err)));
    req.once('close', onEnd);
    req.once('response', (res) => {
      const player: TestPlayer = {
        userAgent,
        bytes: 0,
        status: res.statusCode ?? 0,
        closed: closedPromise,
        isClosed: () => closed,
        stop: () => req.destroy(),
      };
      res.on('data', (c: Buffer) => (player.bytes += c.length));
      res.once('error', () => undefined);
      // Connected and fed: the first body bytes arrived.
      if (player.status !== 200) resolve(player);
      else res.once('data', () => resolve(player));
    });
  });
}

function json(reply: Reply): unknown {
  return JSON.parse(reply.body.toString('utf8'));
}

function assertErrorBody(reply: Reply, status: number, code: string, what: string): void {
  assert.equal(reply.status, status, `${what}: status (${reply.body.toString()})`);
  assert.match(String(reply.headers['content-type']), /^application\/json/, `${what}: Content-Type`);
  assert.equal(reply.headers['access-control-allow-origin'], '*', `${what}: CORS header`);
  const body = json(reply) as { error?: { code?: unknown; message?: unknown } };
  assert.equal(body.error?.code, code, `${what}: error code`);
  assert.equal(typeof body.error?.message, 'string', `${what}: error message`);
}

async function clients(master: RunningMaster): Promise<ClientInfo[]> {
  const reply = await request(master.url('/api/v1/clients'), { headers: AUTH });
  assert.equal(reply.status, 200, `GET /api/v1/clients: ${reply.body.toString()}`);
  return (json(reply) as { clients: ClientInfo[] }).clients;
}

// --- A small Prometheus text-format (0.0.4) checker: every line a HELP, a TYPE, a sample or blank.
const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[-+]?(?:\\d+\\.?\\d*(?:[eE][-+]?\\d+)?|\\.\\d+(?:[eE][-+]?\\d+)?)|NaN|[-+]Inf)';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the exposition text; throws on the first line that is none of the above. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '' || HELP.test(line)) continue;
    const type = TYPE.exec(line);
    if (type) {
      assert.ok(!types.has(type[1]!), `line ${i + 1}: a second TYPE for ${type[1]}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = SAMPLE.exec(line);
    assert.ok(sample, `line ${i + 1} is not valid Prometheus text: ${JSON.stringify(line)}`);
    const [, name, labelText, value] = sample;
    const family = [...types.keys()].find((f) => name === f || (types.get(f) === 'histogram' && /^(.*)_(bucket|sum|count)$/.exec(name!)?.[1] === f));
    assert.ok(family, `line ${i + 1}: sample ${name} has no TYPE before it`);
    const labels: Record<string, string> = {};
    for (const m of (labelText ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
    samples.push({ name: name!, labels, value: Number(value!.replace(/^\+/, '')) });
  }
  return { samples, types };
}

async function scrape(master: RunningMaster): Promise<{ samples: Sample[]; types: Map<string, string> }> {
  const reply = await request(master.url('/metrics'), { headers: AUTH });
  assert.equal(reply.status, 200, `/metrics: ${reply.body.toString()}`);
  assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(reply.body.toString('utf8'));
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + s.value, 0);
}

describe('Control API and /metrics, 3 edges, players of a looping file', { timeout: 120_000 }, () => {
  const PLAYERS = 6;
  let master: RunningMaster | undefined;
  let stream = '';
  const players: TestPlayer[] = [];

  before(async () => {
    // A long clip (several MB) looping: the stream never ends while the tests run.
    const clip = await makeClip('webm-vp8-opus', { seconds: 60 });
    stream = streamName(clip);
    master = await startMaster([clip, '--loop', '--edges', '3', '--api-token', TOKEN]);
    await waitForStream(master, stream, 15_000);
    for (let i = 0; i < PLAYERS; i++) players.push(await openPlayer(master.url(`/live/${stream}`), `test-player-${i}`));
    assert.ok(players.every((p) => p.status === 200));
  });
  after(async () => {
    for (const p of players) p.stop();
    await stopQuietly(master);
  });

  it('the token is enforced: 401 with WWW-Authenticate without it or with a wrong one, 200 with it', async () => {
    const m = master!;
    for (const path of ['/api/v1/clients', '/api/v1/streams', '/metrics']) {
      const none = await request(m.url(path));
      assertErrorBody(none, 401, 'MKV_ERR_UNAUTHORIZED', `${path} without a token`);
      assert.match(String(none.headers['www-authenticate']), /^Bearer/);
      const wrong = await request(m.url(path), { headers: { Authorization: `Bearer ${TOKEN}x` } });
      assertErrorBody(wrong, 401, 'MKV_ERR_UNAUTHORIZED', `${path} with a wrong token`);
      const basic = await request(m.url(path), { headers: { Authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` } });
      assert.equal(basic.status, 401, `${path} with the token as Basic auth`);
      const good = await request(m.url(path), { headers: AUTH });
      assert.equal(good.status, 200, `${path} with the token`);
      assert.equal(good.headers['access-control-allow-origin'], '*');
    }
  });

  // The master's own command line has it here, as the test passed it: a config file keeps it off that one too.
  it('the token is not on a child process\'s command line, which every local user can read', async () => {
    const server = JSON.parse((await request(master!.url('/api/v1/server'), { headers: AUTH })).body.toString()) as {
      pids: { master: number; source: number; edges: number[] };
    };
    const pids = [server.pids.source, ...server.pids.edges];
    assert.equal(pids.length, 4);
    for (const pid of pids) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      assert.ok(cmdline.includes('node'), `pid ${pid} is a node process`);
      assert.ok(!cmdline.includes(TOKEN), `pid ${pid}'s command line shows the token`);
    }
  });

  it('GET clients lists exactly the open players: count, streams, user agents, spread over the 3 edges', async () => {
    const m = master!;
    const listed = await waitFor('every player in /api/v1/clients', async () => {
      const list = await clients(m);
      return list.length === PLAYERS ? list : undefined;
    }, 5000);
    assert.deepEqual(listed.map((c) => c.userAgent).sort(), players.map((p) => p.userAgent).sort());
    assert.equal(new Set(listed.map((c) => c.id)).size, PLAYERS, 'ids are unique');
    for (const c of listed) {
      assert.equal(c.stream, stream);
      assert.equal(c.ip, '127.0.0.1');
      assert.match(c.id, new RegExp(`^${c.edge}-\\d+$`));
      assert.ok(c.bytes > 0, `${c.id} has bytes`);
      assert.ok(!Number.isNaN(Date.parse(c.since)) && new Date(c.since).toISOString() === c.since, `${c.id}: since is ISO`);
      assert.equal(typeof c.lagMs, 'number');
    }
    assert.deepEqual([...new Set(listed.map((c) => c.edge))].sort(), [1, 2, 3], 'players on every edge');

    const streams = json(await request(m.url('/api/v1/streams'), { headers: AUTH })) as { streams: { name: string; players: number; origin: string; bytesIn: number }[] };
    assert.equal(streams.streams.length, 1);
    assert.equal(streams.streams[0]!.name, stream);
    assert.equal(streams.streams[0]!.players, PLAYERS);
    assert.equal(streams.streams[0]!.origin, 'input');
    assert.ok(streams.streams[0]!.bytesIn > 0);
    const one = json(await request(m.url(`/api/v1/streams/${stream}`), { headers: AUTH })) as { name: string; players: number };
    assert.equal(one.name, stream);

    const edges = json(await request(m.url('/api/v1/edges'), { headers: AUTH })) as { edges: { id: number; pid: number; players: number }[] };
    assert.deepEqual(edges.edges.map((e) => e.id), [1, 2, 3]);
    assert.equal(edges.edges.reduce((n, e) => n + e.players, 0), PLAYERS);
    for (const e of edges.edges) assert.equal(e.players, listed.filter((c) => c.edge === e.id).length, `edge ${e.id}'s players`);
  });

  it('DELETE clients/<id> closes exactly that connection; the others keep receiving', async () => {
    const m = master!;
    const listed = await clients(m);
    const victim = listed.find((c) => c.edge === 2) ?? listed[0]!;
    const player = players.find((p) => p.userAgent === victim.userAgent)!;
    const before = new Map(players.map((p) => [p, p.bytes]));

    const reply = await request(m.url(`/api/v1/clients/${victim.id}`), { method: 'DELETE', headers: AUTH });
    assert.equal(reply.status, 200, reply.body.toString());
    await waitFor(`${victim.id}'s connection to close`, () => player.isClosed(), 5000, 20);

    const others = players.filter((p) => p !== player);
    // The others go on: each receives more after the kick, and none is closed.
    await waitFor('the other players to receive more', () => others.every((p) => p.bytes > before.get(p)!), 5000, 50);
    assert.ok(others.every((p) => !p.isClosed()), 'only the kicked player was closed');
    const after = await waitFor('the list without the kicked player', async () => {
      const list = await clients(m);
      return list.length === PLAYERS - 1 ? list : undefined;
    });
    assert.ok(!after.some((c) => c.id === victim.id));

    const again = await request(m.url(`/api/v1/clients/${victim.id}`), { method: 'DELETE', headers: AUTH });
    assertErrorBody(again, 404, 'MKV_ERR_CLIENT_NOT_FOUND', 'DELETE of a closed player');
    assertErrorBody(await request(m.url('/api/v1/clients/9-1'), { method: 'DELETE', headers: AUTH }), 404, 'MKV_ERR_CLIENT_NOT_FOUND', 'no such edge');
  });

  it('/metrics is Prometheus text; bytes sent rise between scrapes; every process is labelled', async () => {
    const m = master!;
    const first = await scrape(m);
    for (const [name, type] of [
      ['mkvcast_players', 'gauge'],
      ['mkvcast_bytes_sent_total', 'counter'],
      ['mkvcast_bytes_received_total', 'counter'],
      ['mkvcast_player_skips_total', 'counter'],
      ['mkvcast_player_kicks_total', 'counter'],
      ['mkvcast_rejected_total', 'counter'],
      ['mkvcast_child_restarts_total', 'counter'],
      ['mkvcast_segment_latency_seconds', 'histogram'],
    ]) {
      assert.equal(first.types.get(name!), type, `${name} is a ${type}`);
    }
    const live = players.filter((p) => !p.isClosed()).length;
    assert.equal(sum(first.samples, 'mkvcast_players', { stream }), live, 'players summed over the edges');
    assert.ok(sum(first.samples, 'mkvcast_player_kicks_total', { reason: 'api' }) >= 1, 'the API kick is counted');
    for (const proc of ['master', 'source', 'edge-1', 'edge-2', 'edge-3']) {
      assert.ok(first.samples.some((s) => s.name === 'process_cpu_user_seconds_total' && s.labels.process === proc), `process metrics of ${proc}`);
      assert.ok(first.samples.some((s) => s.name === 'nodejs_heap_size_used_bytes' && s.labels.process === proc), `heap of ${proc}`);
    }
    assert.ok(first.samples.some((s) => s.name === 'mkvcast_child_restarts_total' && s.labels.process === 'edge-3'));
    const count = sum(first.samples, 'mkvcast_segment_latency_seconds_count');
    assert.ok(count > 0, 'latencies were recorded');
    assert.equal(sum(first.samples, 'mkvcast_segment_latency_seconds_bucket', { le: '+Inf' }), count);

    const sent = sum(first.samples, 'mkvcast_bytes_sent_total', { stream });
    const received = sum(first.samples, 'mkvcast_bytes_received_total', { stream });
    assert.ok(sent > 0 && received > 0);
    const later = await waitFor('bytes sent and received to rise', async () => {
      const next = await scrape(m);
      const rose = sum(next.samples, 'mkvcast_bytes_sent_total', { stream }) > sent && sum(next.samples, 'mkvcast_bytes_received_total', { stream }) > received;
      return rose ? next : undefined;
    }, 5000, 200);
    // What the players really received bounds what was sent from below, over time.
    assert.ok(sum(later.samples, 'mkvcast_bytes_sent_total', { stream }) >= sent);
  });

  it('unknown API paths, stream names and methods answer JSON errors with their codes', async () => {
    const m = master!;
    assertErrorBody(await request(m.url('/api/v1/streams/no-such-stream'), { headers: AUTH }), 404, 'MKV_ERR_STREAM_NOT_FOUND', 'unknown stream');
    assertErrorBody(await request(m.url('/api/v1/streams/no-such-stream'), { method: 'DELETE', headers: AUTH }), 404, 'MKV_ERR_STREAM_NOT_FOUND', 'DELETE unknown stream');
    assertErrorBody(await request(m.url('/api/v1/nothing'), { headers: AUTH }), 404, 'MKV_ERR_NOT_FOUND', 'unknown path');
    const wrong = await request(m.url('/api/v1/clients'), { method: 'POST', headers: AUTH });
    assertErrorBody(wrong, 405, 'MKV_ERR_METHOD_NOT_ALLOWED', 'POST clients');
    assert.equal(wrong.headers.allow, 'GET, HEAD');
    const reload = await request(m.url('/api/v1/reload'), { method: 'POST', headers: AUTH });
    // Started without --config: nothing to reload, and the answer says so.
    assertErrorBody(reload, 409, 'MKV_ERR_RELOAD', 'reload without --config');
    const server = json(await request(m.url('/api/v1/server'), { headers: AUTH })) as { version: string; uptimeS: number; options: { edges: number; apiToken: string } };
    const pkg = JSON.parse(await readFile(new URL('../../packages/master/package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(server.version, pkg.version);
    assert.equal(server.options.edges, 3);
    assert.notEqual(server.options.apiToken, TOKEN, 'the token is never shown');
  });
});

describe('a full edge still answers the API and /metrics', { timeout: 60_000 }, () => {
  it('--edges 1 --clients-per-edge 2 with 2 players: a third player gets 503; the API and /metrics answer 200', async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 60 });
    const stream = streamName(clip);
    const master = await startMaster([clip, '--loop', '--edges', '1', '--clients-per-edge', '2']);
    const players: TestPlayer[] = [];
    try {
      await waitForStream(master, stream, 15_000);
      for (let i = 0; i < 2; i++) players.push(await openPlayer(master.url(`/live/${stream}`), `full-${i}`));
      const third = await request(master.url(`/live/${stream}`));
      assert.equal(third.status, 503, 'every player slot is taken');
      for (let i = 0; i < 3; i++) {
        const list = await request(master.url('/api/v1/clients'));
        assert.equal(list.status, 200, `GET /api/v1/clients while full: ${list.body.toString()}`);
        assert.equal((json(list) as { clients: unknown[] }).clients.length, 2);
        const metrics = await request(master.url('/metrics'));
        assert.equal(metrics.status, 200, '/metrics while full');
        assert.ok(sum(parseMetrics(metrics.body.toString()).samples, 'mkvcast_rejected_total', { reason: 'server_full' }) >= 1);
      }
      assert.ok(players.every((p) => !p.isClosed()), 'the API requests took no player slot from the players');
    } finally {
      for (const p of players) p.stop();
      await stopQuietly(master);
    }
  });
});

describe('DELETE streams/<name> cuts a published stream', { timeout: 60_000 }, () => {
  let master: RunningMaster | undefined;
  before(async () => {
    master = await startMaster(['--edges', '2']);
  });
  after(() => stopQuietly(master));

  it('the publisher is cut off (410), its players are closed, the stream is gone (404 with a code)', async () => {
    const m = master!;
    const data = await readFile(await makeClip('webm-vp8-opus', { seconds: 30 }));
    // Sent over 30 s and held open after: only the cut can end it within the test.
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const upload = chunkedUpload(m.url('/live/cam'), data, { seconds: 30, method: 'PUT', holdEnd: hold, timeoutMs: 45_000 });
    try {
      await waitForPublished(m, 'cam', upload);
      const player = await openPlayer(m.url('/live/cam'), 'watcher');
      const listed = json(await request(m.url('/api/v1/streams/cam'))) as { origin: string; players: number };
      assert.equal(listed.origin, 'publisher');

      const cut = await request(m.url('/api/v1/streams/cam'), { method: 'DELETE' });
      assert.equal(cut.status, 200, cut.body.toString());
      const answer = await upload;
      assert.equal(answer.status, 410, `the publisher's answer: ${JSON.stringify(answer)}`);
      assert.ok(answer.ms < 20_000, 'cut well before the upload would have ended');
      await waitFor("the player's connection to end", () => player.isClosed(), 10_000, 50);
      const gone = await waitFor('the stream to be gone', async () => {
        const r = await request(m.url('/api/v1/streams/cam'));
        return r.status === 404 ? r : undefined;
      });
      assertErrorBody(gone, 404, 'MKV_ERR_STREAM_NOT_FOUND', 'the cut stream');
      assertErrorBody(await request(m.url('/api/v1/streams/cam'), { method: 'DELETE' }), 404, 'MKV_ERR_STREAM_NOT_FOUND', 'cutting it again');
      assert.equal((await request(m.url('/live/cam'))).status, 404, 'players find no stream');
    } finally {
      release();
    }
  });
});

/** A GET's status, headers and (for an error) body; a 200 is dropped at once (a live stream's body never ends). */
function responseHead(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${url}: no answer within 5 s`)), 5000);
    req.once('error', reject);
    req.once('response', (res) => {
      const answer = { status: res.statusCode ?? 0, headers: res.headers, body: '' };
      if (answer.status === 200) {
        clearTimeout(timer);
        resolve(answer);
        req.destroy();
        return;
      }
      res.on('data', (c: Buffer) => (answer.body += c.toString()));
      res.once('end', () => {
        clearTimeout(timer);
        resolve(answer);
      });
    });
  });
}

describe("the master's own 503 carries the CORS header like every other answer", { timeout: 60_000 }, () => {
  it('edge 1 full and edge 2 restarting: the hand-back finds no edge; 503 with Retry-After and Access-Control-Allow-Origin', async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 60 });
    const stream = streamName(clip);
    const master = await startMaster([clip, '--loop', '--edges', '2', '--clients-per-edge', '1']);
    const players: TestPlayer[] = [];
    try {
      await waitForStream(master, stream, 15_000);
      players.push(await openPlayer(master.url(`/live/${stream}`), 'holder'));
      // A restarted edge is back within a second or so: try a few times to land in that window.
      let answer: { status: number; headers: http.IncomingHttpHeaders; body: string } | undefined;
      for (let attempt = 0; attempt < 5 && answer?.status !== 503; attempt++) {
        const [holder] = await waitFor('the player in the list', async () => {
          const list = (json(await request(master.url('/api/v1/clients'))) as { clients: ClientInfo[] }).clients;
          return list.length === 1 ? list : undefined;
        }, 10_000);
        const other = holder!.edge === 1 ? 2 : 1;
        const edges = (json(await request(master.url('/api/v1/edges'))) as { edges: { id: number; pid: number; ready: boolean }[] }).edges;
        const victim = edges.find((e) => e.id === other)!;
        const died = master.stderr().split(`edge ${other} died`).length;
        process.kill(victim.pid, 'SIGKILL');
        await waitFor(`edge ${other} to be seen dead`, () => master.stderr().split(`edge ${other} died`).length > died, 5000, 5);
        // Only the full edge accepts now: it hands the player back, and the master has no edge for it.
        const reply = await responseHead(master.url(`/live/${stream}`));
        if (reply.status === 503 && reply.headers['retry-after'] === '2') answer = reply;
        await waitFor(`edge ${other} back`, async () => {
          const list = (json(await request(master.url('/api/v1/edges'))) as { edges: { id: number; ready: boolean }[] }).edges;
          return list.every((e) => e.ready);
        }, 10_000);
      }
      if (!answer) {
        // Never a silent pass: say why nothing was checked.
        assert.fail('the restarted edge came back before any request reached the master five times in a row');
      }
      assert.equal(answer.headers['access-control-allow-origin'], '*', "the master's 503 has the CORS header");
      assert.equal(answer.headers['retry-after'], '2');
      assert.match(answer.body, /restarting/, 'the same message as every 503 of the master');
    } finally {
      for (const p of players) p.stop();
      await stopQuietly(master);
    }
  });
});
