// DASH across breaks in what the edges receive: the source SIGKILLed (a new run, its header
// again; it resumes the file at a keyframe, so the GOP in progress lost its end) and an edge
// SIGKILLed (a fresh copy from the source). The cut GOP is never published; every listed
// segment opens on a keyframe at its t and holds every frame of [t, t + d); a restarted edge
// gives the same bytes for the same t as the other one.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromEveryEdge, getManifest, waitForSegments, type Listed } from './helpers/dash.js';
import { pidAlive, request, stopQuietly, waitFor, waitForStats, type Reply } from './helpers/live.js';
import { makeClip, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';

/** The clip's frame duration (25 fps) and audio packet duration (Opus, 20 ms), ms. */
const FRAME_MS = 40;
const AUDIO_MS = 20;

let master: RunningMaster;
let dir: string;
let init: Buffer;

before(async () => {
  const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
  dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-dash-breaks-'));
  master = await startMaster([`cam=${clip}`, '--loop', '--edges', '2']);
  await waitForSegments(master, 'cam', 3);
  init = (await request(master.url('/live/cam/init.webm'))).body;
});

after(async () => {
  await stopQuietly(master);
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function getSegment(t: number): Promise<Reply> {
  return waitFor(`cam/${t}.webm`, async () => {
    const reply = await request(master.url(`/live/cam/${t}.webm`));
    return reply.status === 200 ? reply : undefined;
  }, 3000, 50);
}

/** Asserts the segment is whole: a keyframe at t first, every video frame and audio packet of [t, t + d), a clean decode. */
async function assertWhole(s: Listed, body: Buffer): Promise<void> {
  const file = path.join(dir, `${s.t}.webm`);
  await writeFile(file, Buffer.concat([init, body]));
  const p = await probe(file);
  assert.equal(p.errors, '', `segment ${s.t}`);
  assert.equal(p.firstVideoKey, true, `segment ${s.t} opens on a keyframe`);
  assert.equal(p.firstPtsS, s.t / 1000, `segment ${s.t} starts at t`);
  const frames = Math.round(s.d / FRAME_MS);
  assert.ok(p.videoPackets >= frames - 1 && p.videoPackets <= frames, `segment ${s.t}+${s.d}: ${p.videoPackets} video frames of ${frames}`);
  const audio = Math.round(s.d / AUDIO_MS);
  assert.ok(Math.abs(p.audioPackets - audio) <= 2, `segment ${s.t}+${s.d}: ${p.audioPackets} audio packets of ${audio}`);
}

/** The server's default --buffer, ms: what the window may span. */
const WINDOW_MS = 10_000;

/** Every segment a manifest lists, checked whole, within the window; returns them. */
async function checkListed(): Promise<Listed[]> {
  const { segments } = await getManifest(master, 'cam');
  const [first, last] = [segments[0]!, segments[segments.length - 1]!];
  assert.ok(last.t + last.d - first.t <= WINDOW_MS, `the listed window spans ${last.t + last.d - first.t} ms, at most --buffer`);
  for (const s of segments) await assertWhole(s, (await getSegment(s.t)).body);
  return segments;
}

/** Waits until the manifest lists `count` segments that start after `since` (a t). */
async function segmentsAfter(since: number, count: number): Promise<Listed[]> {
  return waitFor(`${count} segments after ${since}`, async () => {
    const { segments } = await getManifest(master, 'cam');
    const newer = segments.filter((s) => s.t > since);
    return newer.length >= count ? segments : undefined;
  }, 30_000, 200);
}

describe('DASH segments across breaks', { timeout: 120_000 }, () => {
  it('the source SIGKILLed: the GOP it cut is never published (a hole in the timeline), every listed segment before and after is whole', async () => {
    const before = await getManifest(master, 'cam');
    const lastBefore = before.segments[before.segments.length - 1]!.t;
    const stats = await waitForStats(master, 'a source pid', (s) => s.pids.source !== null);
    const victim = stats.pids.source!;
    process.kill(victim, 'SIGKILL');
    await waitForStats(master, 'a new source pid', (s) => s.pids.source !== null && s.pids.source !== victim && pidAlive(s.pids.source), 10_000);
    await segmentsAfter(lastBefore, 3);
    const listed = await checkListed();
    // The GOP in progress when the source died is not published: one hole in the timeline, after the
    // last segment listed before the kill (a GOP may have been published between that look and the kill).
    const holes = listed.filter((s, i) => i + 1 < listed.length && s.t + s.d !== listed[i + 1]!.t);
    assert.equal(holes.length, 1, `one hole in the timeline: ${JSON.stringify(listed)}`);
    assert.ok(holes[0]!.t >= lastBefore, `the hole is after the last segment before the kill (${lastBefore}): ${JSON.stringify(listed)}`);
  });

  it('an edge SIGKILLed: the restarted edge gives the same bytes for the same t as the other', async () => {
    const stats = await waitForStats(master, 'edge pids', (s) => s.pids.edges.every((p) => p !== null));
    const victim = stats.pids.edges[0]!;
    const { segments } = await getManifest(master, 'cam');
    const since = segments[segments.length - 1]!.t;
    process.kill(victim, 'SIGKILL');
    await waitForStats(master, 'edge 1 back', (s) => s.pids.edges[0] !== null && s.pids.edges[0] !== victim && pidAlive(s.pids.edges[0]!), 10_000);
    const now = await segmentsAfter(since, 2);
    const t = now[now.length - 1]!.t;
    const [a, b] = [...(await fromEveryEdge(() => getSegment(t), 2)).values()];
    assert.ok(a!.body.equals(b!.body), `segment ${t}: the same bytes from both edges`);
    await checkListed();
  });
});
