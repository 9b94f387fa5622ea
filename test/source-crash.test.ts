// SIGKILL of the source, which holds every stream's state: the master keeps a checkpoint of
// each stream and hands it to the next run. Players stay connected and what they save never
// goes back in time, for a looped file and for a live publisher that comes back within a
// second (it gets the --grace window, as if it had only dropped its connection).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { collect, makeClip, probe, type CollectResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, errorsIgnoringCut, mapLimit, pidAlive, stopQuietly, waitForStats, waitForStream, type Stats } from './helpers/live.js';
import { assertMonotonicPts, ffmpegIcecastPublisher, killAllTools, packetPts, type Tool } from './helpers/ingest.js';

const PLAYERS = 20;
const KEY = 'k3y';

/** Kills the source; resolves once a new one runs (a new pid in /stats) and the stream is served. */
async function killSource(m: RunningMaster, stream: string): Promise<void> {
  const before = await waitForStats(m, 'a source pid', (s) => s.pids.source !== null);
  const victim = before.pids.source!;
  process.kill(victim, 'SIGKILL');
  await waitForStats(m, 'a new source pid', (s) => s.pids.source !== null && s.pids.source !== victim && pidAlive(s.pids.source), 10_000);
  assert.ok(!pidAlive(victim));
  await waitForStream(m, stream, 10_000);
}

/** Waits until the source has published `n` Segments of a stream. */
async function segmentsOut(m: RunningMaster, stream: string, n: number): Promise<void> {
  const has = (s: Stats): boolean => (s.streams ?? []).some((x) => x.name === stream && x.segments >= n);
  await waitForStats(m, `${n} Segments of '${stream}'`, has, 30_000);
}

/** Every player read until its time was up (none was closed), decodes, and its timestamps only rise. */
async function assertKeptPlaying(players: CollectResult[], what: string): Promise<void> {
  for (const p of players) {
    assert.equal(p.status, 200);
    assert.equal(p.end, 'ms', `${what}: a player's connection ended (${p.end}) before it stopped reading`);
  }
  await mapLimit(players, 2, async (p, i) => {
    const pts = await packetPts(p.file);
    assertMonotonicPts(pts, { video: 0.05, audio: 0.05 }, `${what}, player ${i}`);
    const video = [...pts.values()].find((s) => s.type === 'video')!;
    // It played across the kill: about as many seconds as it read, minus a restart.
    const span = video.pts.at(-1)! - video.pts[0]!;
    assert.ok(span > 8, `${what}, player ${i}: ${span.toFixed(1)} s of video`);
  });
  const p = await probe(players[0]!.file);
  assert.equal(errorsIgnoringCut(p), '', `${what}: decode errors`);
}

describe('SIGKILL of the source with a looped file', () => {
  let master: RunningMaster | undefined;
  after(() => stopQuietly(master));

  it('every player stays connected and its timestamps never go back', { timeout: 90_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 6 });
    master = await startMaster([clip, '--loop', '--name', 'tv', '--edges', '2']);
    const m = master;
    await waitForStream(m, 'tv');
    const players = Array.from({ length: PLAYERS }, () => collect(m.url('/live/tv'), { ms: 16_000 }));
    // Well into the second pass, so that a restart from the file's start would step back.
    await waitForStats(m, `${PLAYERS} players`, (s) => s.players === PLAYERS, 10_000);
    await segmentsOut(m, 'tv', 32); // about 8 s of 250 ms pieces: into the second pass of the 6 s clip
    await killSource(m, 'tv');
    await assertKeptPlaying(await Promise.all(players), 'looped file');
    assertNoStack(m.stderr());
  });
});

describe('SIGKILL of the source with a live publisher that comes back', () => {
  let master: RunningMaster | undefined;
  let publisher: Tool | undefined;
  after(async () => {
    await killAllTools();
    await stopQuietly(master);
  });

  it('every player stays connected through the grace window, and timestamps never go back', { timeout: 90_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 30 });
    master = await startMaster(['--edges', '2', '--publish-key', KEY, '--grace', '5']);
    const m = master;
    publisher = ffmpegIcecastPublisher(clip, m.port, 'cam', KEY);
    await waitForStream(m, 'cam', 10_000);
    const players = Array.from({ length: PLAYERS }, () => collect(m.url('/live/cam'), { ms: 16_000 }));
    await waitForStats(m, `${PLAYERS} players`, (s) => s.players === PLAYERS, 10_000);
    await segmentsOut(m, 'cam', 16);
    const before = await waitForStats(m, 'a source pid', (s) => s.pids.source !== null);
    process.kill(before.pids.source!, 'SIGKILL');
    // The publisher loses its connection with the source and comes straight back, before the
    // new source is up: the master holds its upload until it is.
    await publisher.exited;
    publisher = ffmpegIcecastPublisher(clip, m.port, 'cam', KEY);
    await assertKeptPlaying(await Promise.all(players), 'live publisher');
    assertNoStack(m.stderr());
  });
});
