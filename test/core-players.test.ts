// Players of a real master fed by real ffmpeg clips: what a player connected from the start
// receives (every clip kind, files and stdin), and 40 players on 3 edges at once.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, frameMd5, makeClip, probe, type ClipKind, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import {
  assertNoStack,
  assertSameFrames,
  codecsOf,
  contentTypeOf,
  exitWithin,
  feedInRealTime,
  getStats,
  mapLimit,
  problemLines,
  stopQuietly,
  streamName,
  type Stats,
  waitForStats,
  waitForStream,
} from './helpers/live.js';

const SECONDS = 6;
const EXPECTED_CODECS: Record<string, string[]> = {
  'webm-vp8-opus': ['video:vp8', 'audio:opus'],
  'mkv-h264-aac': ['video:h264', 'audio:aac'],
  'audio-only': ['audio:opus'],
  'piped-mkv': ['video:h264', 'audio:aac'],
};

/** What every complete recording of a whole clip must show. */
async function assertWholeClip(got: CollectResult, clip: string, what: string, contentType = contentTypeOf(clip)): Promise<void> {
  assert.equal(got.status, 200, what);
  assert.equal(got.headers['content-type'], contentType, `${what}: Content-Type`);
  assert.equal(got.headers['access-control-allow-origin'], '*', `${what}: CORS`);
  assert.equal(got.end, 'closed', `${what}: the connection should close at the end of the input`);
  const [p, want] = await Promise.all([probe(got.file), probe(clip)]);
  assert.equal(p.errors, '', `${what}: decode errors`);
  assert.deepEqual(codecsOf(p), codecsOf(want), `${what}: streams`);
  if (want.videoPackets > 0) assert.equal(p.firstVideoKey, true, `${what}: first video frame must be a keyframe`);
  else assert.equal(p.firstVideoKey, null, `${what}: no video expected`);
  assertSameFrames(await frameMd5(got.file), await frameMd5(clip), what);
}

describe('a player connected from the start', () => {
  const clips = new Map<ClipKind, string>();
  before(async () => {
    for (const kind of Object.keys(EXPECTED_CODECS) as ClipKind[]) clips.set(kind, await makeClip(kind, { seconds: SECONDS }));
    const originals = await Promise.all([...clips.values()].map((c) => probe(c)));
    // The clips themselves must be what the tests below assume.
    for (const [i, [kind]] of [...clips].entries()) assert.deepEqual(codecsOf(originals[i]!), EXPECTED_CODECS[kind], kind);
  });

  for (const kind of Object.keys(EXPECTED_CODECS) as ClipKind[]) {
    it(`${kind} file: 200, right Content-Type, decodes cleanly from a keyframe, same frames as the file, master exits 0`, { timeout: 40_000 }, async () => {
      const clip = clips.get(kind)!;
      let master: RunningMaster | undefined;
      try {
        master = await startMaster([clip, '--edges', '1']);
        await waitForStream(master, streamName(clip));
        const got = await collect(master.url(`/live/${streamName(clip)}`), { ms: SECONDS * 1000 + 15_000 });
        await assertWholeClip(got, clip, kind);
        const { code } = await exitWithin(master, 6000);
        assert.equal(code, 0, master.stderr());
        assertNoStack(master.stderr());
        assert.deepEqual(problemLines(master.stderr()), [], 'nothing but info lines on stderr');
      } finally {
        await stopQuietly(master);
      }
    });
  }

  it('piped-mkv on stdin (-), written at the pace of a live muxer: same checks, name "live"', { timeout: 40_000 }, async () => {
    const clip = clips.get('piped-mkv')!;
    const data = await readFile(clip);
    let master: RunningMaster | undefined;
    const abort = new AbortController();
    try {
      master = await startMaster(['-', '--edges', '2'], { stdin: 'pipe' });
      const m = master;
      m.proc.stdin!.on('error', () => undefined); // EPIPE if the master dies: the checks below report it
      const feeding = feedInRealTime(m.proc.stdin!, data, SECONDS, 100, abort.signal);
      // The stream exists once its header and first Cluster are in; join at once after that.
      await waitForStream(m, 'live');
      const got = await collect(m.url('/live/live'), { ms: SECONDS * 1000 + 15_000 });
      await feeding;
      await assertWholeClip(got, clip, 'stdin, real time', 'video/x-matroska');
      const { code } = await exitWithin(m, 6000);
      assert.equal(code, 0, m.stderr());
      assertNoStack(m.stderr());
    } finally {
      abort.abort();
      await stopQuietly(master);
    }
  });

  it('stdin written all at once (like `cat clip |`) after a player joined: it still gets every frame', { timeout: 40_000 }, async () => {
    const clip = clips.get('piped-mkv')!;
    const data = await readFile(clip);
    let master: RunningMaster | undefined;
    try {
      master = await startMaster(['-', '--edges', '1'], { stdin: 'pipe' });
      const m = master;
      const stdin = m.proc.stdin!;
      stdin.on('error', () => undefined); // EPIPE if the master dies: the checks below report it
      // Enough for the header and the first Clusters (which are ~32 KiB on a pipe), not a GOP (2 s).
      stdin.write(data.subarray(0, Math.floor(data.length * 0.15)));
      await waitForStream(m, 'live');
      const recording = collect(m.url('/live/live'), { ms: 20_000 });
      await waitForStats(m, 'the player to be counted', (s) => s.players === 1);
      stdin.end(data.subarray(Math.floor(data.length * 0.15)));
      const got = await recording;
      await assertWholeClip(got, clip, 'stdin, burst', 'video/x-matroska');
      const { code } = await exitWithin(m, 6000);
      assert.equal(code, 0, m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });
});

describe('the stream is there when the master says it listens', () => {
  // The user's expectation: once the master prints its listening line, a player may connect
  // and get the stream from its first Cluster. The file's stream appears at the edges only
  // after the source has ingested the first Cluster, which can come after the listening line.
  it('a GET right after the listening line is served the stream (not 404)', { timeout: 30_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: SECONDS });
    let master: RunningMaster | undefined;
    try {
      master = await startMaster([clip, '--edges', '2']);
      const got = await collect(master.url(`/live/${streamName(clip)}`), { bytes: 20_000, ms: 5000 });
      assert.equal(got.status, 200, `status of the first GET; stderr:\n${master.stderr()}`);
      assert.equal(got.bytes, 20_000);
    } finally {
      await stopQuietly(master);
    }
  });
});

describe('40 players on --edges 3 --clients-per-edge 16, then 8 more, then one too many', () => {
  // One scenario, its facets checked one by one below.
  let clip: string;
  let name: string;
  let original: ProbeResult;
  let master: RunningMaster | undefined;
  let s40: Stats | undefined;
  let s40Error: string | undefined;
  let s48: Stats | undefined;
  let players: CollectResult[] = [];
  let extra: CollectResult[] = [];
  let over: CollectResult | undefined;
  let probes: ProbeResult[] = [];
  let exit: { code: number | null } | undefined;

  before(async () => {
    clip = await makeClip('webm-vp8-opus', { seconds: 10 });
    name = streamName(clip);
    original = await probe(clip);
    master = await startMaster([clip, '--edges', '3', '--clients-per-edge', '16']);
    const m = master;
    const url = m.url(`/live/${name}`);
    await waitForStream(m, name);
    const first = Array.from({ length: 40 }, () => collect(url, { ms: 40_000 }));
    s40 = await waitForStats(m, '40 players in /stats', (s) => s.players === 40, 6000).catch((err: Error) => {
      s40Error = err.message;
      return undefined;
    });
    // Let the edges report the /stats requests above as closed (see the regression test below).
    await sleep(300);
    const more = Array.from({ length: 8 }, () => collect(url, { ms: 40_000 }));
    // No /stats request while they arrive: it would take a place in the master's load count.
    await sleep(1500);
    // Every one of the 8 answered: admitted or rejected.
    s48 = await waitForStats(m, 'players 41–48 answered', (s) => s.players + s.rejected >= 48, 6000).catch(() => undefined);
    await sleep(300);
    over = await collect(url, { ms: 5000 });
    extra = await Promise.all(more);
    players = await Promise.all(first);
    probes = await mapLimit(players, 2, (r) => (r.status === 200 ? probe(r.file) : Promise.resolve(null as unknown as ProbeResult)));
    exit = await exitWithin(m, 8000);
  });

  after(() => stopQuietly(master));

  it('all 40 get 200 and their connections close at the end of the clip', () => {
    assert.deepEqual(players.map((r) => r.status), Array(40).fill(200), `statuses; stderr:\n${master?.stderr()}`);
    assert.deepEqual(players.map((r) => r.end), Array(40).fill('closed'));
  });

  it('each of the 40 streams decodes cleanly, first video frame a keyframe, from about the start', () => {
    probes.forEach((p, i) => {
      assert.ok(p, `player ${i} got status ${players[i]?.status}`);
      assert.equal(p.errors, '', `player ${i}: decode errors`);
      assert.equal(p.firstVideoKey, true, `player ${i}: first video frame`);
      // Connected within a second of the start: at most the first GOP (25 frames) may be missed.
      assert.ok(p.videoPackets >= original.videoPackets - 25, `player ${i}: ${p.videoPackets} of ${original.videoPackets} video frames`);
    });
  });

  it('/stats counts them and shows them spread over the 3 edges', () => {
    assert.ok(s40, s40Error);
    assert.equal(s40.capacity, 48);
    assert.equal(s40.playersByStream[name], 40);
    assert.equal(s40.pids.edges.length, 3);
    assert.ok(s40.edges !== undefined, `/stats has no per-edge breakdown: ${JSON.stringify(s40)}`);
    const perEdge = s40.edges.map((e) => e.players);
    assert.equal(perEdge.reduce((a, b) => a + b, 0), 40, `per-edge players ${perEdge.join('/')}`);
    // Edges accept on the shared socket and the master levels them by handing players back from
    // an edge ahead of the least-loaded one; 40 joining in the same few milliseconds outrun that
    // levelling, so the promise is a spread: every edge serves a fair share, none past its 16 slots.
    for (const n of perEdge) assert.ok(n >= 6 && n <= 16, `players per edge ${perEdge.join('/')}`);
    assert.deepEqual(s40.edges.map((e) => e.pid), s40.pids.edges);
  });

  it('players 41–48 are all admitted (capacity = 3 × 16)', () => {
    assert.deepEqual(extra.map((r) => r.status), Array(8).fill(200), `last /stats: ${JSON.stringify(s48)}`);
  });

  it('the 49th concurrent player gets 503 with Retry-After', () => {
    assert.ok(over);
    assert.equal(over.status, 503, `49th player; /stats before it: ${JSON.stringify(s48)}`);
    assert.match(String(over.headers['retry-after']), /^\d+$/, 'Retry-After');
  });

  it('the master exits 0 after the clip', () => {
    assert.equal(exit?.code, 0, master?.stderr());
  });
});

describe('dispatch to the least-loaded edge', () => {
  // Regression: the master counts a finished request (here GET /stats) as an open connection
  // of its edge until that edge's next load report; a player arriving meanwhile is sent to a
  // full edge and rejected although another edge has a free slot.
  it('a player arriving just after a /stats request still gets the last free slot', { timeout: 30_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: SECONDS });
    const name = streamName(clip);
    let master: RunningMaster | undefined;
    const open: Promise<CollectResult>[] = [];
    try {
      master = await startMaster([clip, '--edges', '2', '--clients-per-edge', '2', '--loop']);
      const m = master;
      await waitForStream(m, name);
      for (let i = 0; i < 3; i++) open.push(collect(m.url(`/live/${name}`), { ms: 8000 }));
      await waitForStats(m, '3 players', (s) => s.players === 3);
      await getStats(m);
      const last = await collect(m.url(`/live/${name}`), { bytes: 10_000, ms: 5000 });
      assert.equal(last.status, 200, 'the 4th player of 2 × 2 slots');
    } finally {
      await stopQuietly(master);
      await Promise.allSettled(open);
    }
  });
});
