// Players of a real master fed by real ffmpeg clips: what a player connected from the start
// receives (every clip kind, files and stdin), and 40 players on 3 edges at once.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { before, describe, it } from 'node:test';
import { collect, frameMd5, makeClip, probe, type ClipKind, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import {
  assertNoStack,
  assertSameFrames,
  codecsOf,
  contentTypeOf,
  exitWithin,
  feedInRealTime,
  mapLimit,
  problemLines,
  stopQuietly,
  streamName,
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

describe('joining at once', () => {
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

describe('40 players on --edges 3 --clients-per-edge 16', () => {
  it('all get 200 and a clean stream from a keyframe, spread over the edges; the 49th gets 503 + Retry-After', { timeout: 90_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 10 });
    const original = await probe(clip);
    const name = streamName(clip);
    let master: RunningMaster | undefined;
    try {
      master = await startMaster([clip, '--edges', '3', '--clients-per-edge', '16']);
      const m = master;
      const url = m.url(`/live/${name}`);
      await waitForStream(m, name);
      const players = Array.from({ length: 40 }, () => collect(url, { ms: 40_000 }));

      const s40 = await waitForStats(m, '40 players in /stats', (s) => s.players === 40, 8000);
      assert.equal(s40.capacity, 48);
      assert.equal(s40.playersByStream[name], 40);
      assert.equal(s40.pids.edges.length, 3);
      assert.ok(s40.edges !== undefined, `/stats has no per-edge breakdown: ${JSON.stringify(s40)}`);
      const perEdge = s40.edges.map((e) => e.players);
      assert.equal(perEdge.reduce((a, b) => a + b, 0), 40, `per-edge players ${perEdge}`);
      // Least-loaded dispatch: 13/13/14 ideally; no edge idle, none past its 16 slots.
      for (const n of perEdge) assert.ok(n >= 10 && n <= 16, `players per edge ${perEdge.join('/')}`);
      assert.deepEqual(s40.edges.map((e) => e.pid), s40.pids.edges);

      // Fill the remaining 8 slots: every one of them must be admitted.
      const more = Array.from({ length: 8 }, () => collect(url, { ms: 40_000 }));
      await waitForStats(m, '48 players in /stats', (s) => s.players === 48, 8000);
      const over = await collect(url, { ms: 5000 });
      assert.equal(over.status, 503, 'the 49th concurrent player');
      assert.match(String(over.headers['retry-after']), /^\d+$/, 'Retry-After');
      await waitForStats(m, 'the rejection to be counted', (s) => s.rejected >= 1, 5000);

      const extra = await Promise.all(more);
      assert.deepEqual(extra.map((r) => r.status), Array(8).fill(200), 'players 41–48');
      const results = await Promise.all(players);
      assert.deepEqual(results.map((r) => r.status), Array(40).fill(200));
      assert.deepEqual(results.map((r) => r.end), Array(40).fill('closed'));

      const probes: ProbeResult[] = await mapLimit(results, 2, (r) => probe(r.file));
      probes.forEach((p, i) => {
        assert.equal(p.errors, '', `player ${i}: decode errors`);
        assert.equal(p.firstVideoKey, true, `player ${i}: first video frame`);
        // Connected within a second of the start: at most the first GOP (25 frames) may be missed.
        assert.ok(p.videoPackets >= original.videoPackets - 25, `player ${i}: ${p.videoPackets} of ${original.videoPackets} video frames`);
      });
      const { code } = await exitWithin(m, 6000);
      assert.equal(code, 0, m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });
});
