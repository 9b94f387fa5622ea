// Tiers on loopback: a "camera" mkvcast (a looped clip), origins A and B both pulling it (so
// they share its timestamps), and an edge host pulling `A|B`. A player of the edge host keeps
// its connection while A is SIGKILLed; what it gets after the fail-over carries B's own
// timestamps (no rebasing), so every edge host numbers the stream alike. Then A comes back on
// its port and nothing breaks; when B dies in turn, the edge host goes back to A. And an edge
// host whose source process is killed goes on with the origin's timestamps too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, makeClip, probe, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, errorsIgnoringCut, getStats, request, stopQuietly, waitFor, waitForStats, waitForStream } from './helpers/live.js';
import { assertMonotonicPts, packetPts } from './helpers/ingest.js';

/** One frame of the clip's 25 fps video, of its 20 ms Opus. */
const ONE_FRAME_S = { video: 0.04, audio: 0.02 };
/** The clip's GOP (-g 25 at 25 fps). */
const GOP_S = 1;

type Packets = Map<number, { type: string; pts: number[] }>;

/** How many mkvcast pullers (User-Agent: mkvcast) an origin serves now. */
async function pullers(origin: RunningMaster): Promise<number> {
  const reply = await request(origin.url('/api/v1/clients'));
  if (reply.status !== 200) return 0;
  const body = JSON.parse(reply.body.toString()) as { clients: Array<{ userAgent: string }> };
  return body.clients.filter((c) => c.userAgent === 'mkvcast').length;
}

/** Which origin the edge host pulls from now, seen from the origins: 'A', 'B', or '' (neither, or both). */
async function pulledFrom(a: RunningMaster | undefined, b: RunningMaster | undefined): Promise<string> {
  const alive = (m: RunningMaster | undefined): m is RunningMaster => m !== undefined && m.proc.exitCode === null && m.proc.signalCode === null;
  const [onA, onB] = await Promise.all([alive(a) ? pullers(a) : 0, alive(b) ? pullers(b) : 0]);
  return onA === 1 && onB === 0 ? 'A' : onB === 1 && onA === 0 ? 'B' : '';
}

/** Video packets' pts (ms) → their size, from ffprobe. */
async function videoSizes(file: string): Promise<Map<number, number>> {
  const { execFile } = await import('node:child_process');
  const { ffprobePath } = await import('./helpers/media.js');
  const out = await new Promise<string>((resolve, reject) =>
    execFile(ffprobePath, ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,size', '-of', 'csv=p=0', file], { timeout: 60_000, maxBuffer: 64 << 20 },
      (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
  const sizes = new Map<number, number>();
  for (const line of out.trim().split('\n')) {
    const [pts, size] = line.split(',');
    if (pts && size && pts !== 'N/A') sizes.set(Math.round(Number(pts) * 1000), Number(size));
  }
  return sizes;
}

/** The largest step between two consecutive pts of any stream, s. */
function largestStep(packets: Packets): number {
  let largest = 0;
  for (const { pts } of packets.values()) {
    const sorted = [...pts].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++) largest = Math.max(largest, sorted[i]! - sorted[i - 1]!);
  }
  return largest;
}

describe('an edge host pulling A|B: A is killed, comes back, B is killed', () => {
  const masters: Array<RunningMaster | undefined> = [];
  let camera: RunningMaster;
  let a: RunningMaster | undefined;
  let b: RunningMaster;
  let edge: RunningMaster;
  let got: CollectResult;
  let p: ProbeResult | undefined;
  let packets: Packets;
  /** What a player of B recorded after the fail-over, and what the edge host's player got. */
  let fromB: Map<number, number>;
  let fromEdge: Map<number, number>;
  const labels: string[] = [];

  before(async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 6 });
    camera = await startMaster([`x=${clip}`, '--loop', '--edges', '1']);
    masters.push(camera);
    await waitForStream(camera, 'x', 10_000);
    a = await startMaster([`x=${camera.url('/live/x')}`, '--edges', '1']);
    b = await startMaster([`x=${camera.url('/live/x')}`, '--edges', '1']);
    masters.push(a, b);
    await Promise.all([waitForStream(a, 'x', 10_000), waitForStream(b, 'x', 10_000)]);
    const aPort = a.port;
    edge = await startMaster([`x=${a.url('/live/x')}|${b.url('/live/x')}`, '--edges', '1', '--grace', '10']);
    masters.push(edge);
    await waitForStream(edge, 'x', 10_000);
    labels.push(await waitFor('the edge host on A', () => pulledFrom(a, b), 10_000));

    // One player of the edge host records it all: 3 s on A, the fail-over, A back, B gone.
    const recording = collect(edge.url('/live/x'), { ms: 22_000 });
    await sleep(3000); // media on A before the kill
    a.proc.kill('SIGKILL');
    await a.exited;
    labels.push(await waitFor('the edge host on B', async () => (await pulledFrom(undefined, b)) === 'B' && 'B', 10_000));
    // B's own player, at the same time as the edge host's: the same media at the same pts?
    const bRecording = collect(b.url('/live/x'), { ms: 5000 });
    a = await startMaster([`x=${camera.url('/live/x')}`, '--edges', '1'], { port: aPort });
    masters.push(a);
    await waitForStream(a, 'x', 10_000);
    const bGot = await bRecording;
    labels.push(await pulledFrom(a, b)); // A is back: the edge host stays on B
    b.proc.kill('SIGKILL');
    await b.exited;
    labels.push(await waitFor('the edge host back on A', async () => (await pulledFrom(a, undefined)) === 'A' && 'A', 10_000));
    got = await recording;
    if (got.status === 200) {
      p = await probe(got.file);
      packets = await packetPts(got.file);
      fromEdge = await videoSizes(got.file);
    }
    fromB = await videoSizes(bGot.file);
  });

  after(async () => {
    for (const m of masters.reverse()) await stopQuietly(m);
  });

  const context = (): string => `labels: ${labels.join(' | ')}\nedge host's stderr:\n${edge?.stderr()}`;

  it('the edge host read A, then B, stayed on B when A came back, then went back to A', () => {
    assert.deepEqual(labels, ['A', 'B', 'B', 'A'], `A back on its port: the edge host stays on B until B fails; ${context()}`);
  });

  it('its player kept its one connection through both fail-overs, and what it got decodes from a keyframe', () => {
    assert.equal(got.status, 200, context());
    assert.equal(got.end, 'ms', `the player's connection ended early (${got.end}); ${context()}`);
    assert.ok(p, context());
    assert.equal(errorsIgnoringCut(p), '', context());
    assert.equal(p.firstVideoKey, true);
  });

  it('pts rise through the fail-overs, without a hole of more than about one GOP', (t) => {
    assertMonotonicPts(packets, ONE_FRAME_S, 'the edge host\'s player');
    const step = largestStep(packets);
    t.diagnostic(`largest pts step: ${step.toFixed(3)} s`);
    assert.ok(step <= GOP_S + 0.5, `a hole of ${step.toFixed(3)} s; ${context()}`);
  });

  it('after the fail-over the edge host carries B\'s timestamps: the same frames at the same pts', (t) => {
    let same = 0;
    const differ: string[] = [];
    for (const [pts, size] of fromB) {
      const mine = fromEdge.get(pts);
      if (mine === undefined) continue;
      if (mine === size) same++;
      else differ.push(`${pts} ms: ${mine} B here, ${size} B from B`);
    }
    t.diagnostic(`${same} video frames at the same pts with the same size; ${differ.length} differ`);
    assert.deepEqual(differ.slice(0, 5), [], context());
    assert.ok(same >= 75, `only ${same} of B's ${fromB.size} video frames found at their pts in the edge host's recording; ${context()}`);
  });

  it('every master stays up, without stack traces', () => {
    for (const m of [camera, a!, edge]) {
      assert.equal(m.proc.exitCode, null, m.stderr());
      assertNoStack(m.stderr());
    }
  });
});

describe('an edge host\'s source is SIGKILLed: the next one goes on with the origin\'s timestamps', () => {
  const masters: RunningMaster[] = [];
  let origin: RunningMaster;
  let edge: RunningMaster;
  let got: CollectResult;
  let fromOrigin: Map<number, number>;
  let fromEdge: Map<number, number>;
  let packets: Packets;

  before(async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 6 });
    const camera = await startMaster([`x=${clip}`, '--loop', '--edges', '1']);
    masters.push(camera);
    await waitForStream(camera, 'x', 10_000);
    origin = await startMaster([`x=${camera.url('/live/x')}`, '--edges', '1']);
    masters.push(origin);
    await waitForStream(origin, 'x', 10_000);
    edge = await startMaster([`x=${origin.url('/live/x')}`, '--edges', '1']);
    masters.push(edge);
    await waitForStream(edge, 'x', 10_000);
    const recording = collect(edge.url('/live/x'), { ms: 14_000 });
    await sleep(4000); // media from the first source run
    const victim = (await getStats(edge)).pids.source!;
    process.kill(victim, 'SIGKILL');
    await waitForStats(edge, 'a new source', (s) => s.pids.source !== null && s.pids.source !== victim, 10_000);
    await waitFor('the new source\'s pull on the origin', async () => (await pullers(origin)) === 1, 10_000);
    const originRecording = collect(origin.url('/live/x'), { ms: 5000 });
    got = await recording;
    const originGot = await originRecording;
    packets = await packetPts(got.file);
    fromEdge = await videoSizes(got.file);
    fromOrigin = await videoSizes(originGot.file);
  });

  after(async () => {
    for (const m of masters.reverse()) await stopQuietly(m);
  });

  it('its player keeps its connection; pts rise', () => {
    assert.equal(got.status, 200);
    assert.equal(got.end, 'ms', `the player's connection ended early (${got.end}); ${edge.stderr()}`);
    assertMonotonicPts(packets, ONE_FRAME_S, 'the edge host\'s player');
  });

  it('after the restart the edge host carries the origin\'s timestamps: the same frames at the same pts', (t) => {
    let same = 0;
    const differ: string[] = [];
    for (const [pts, size] of fromOrigin) {
      const mine = fromEdge.get(pts);
      if (mine === undefined) continue;
      if (mine === size) same++;
      else differ.push(`${pts} ms: ${mine} B here, ${size} B from the origin`);
    }
    t.diagnostic(`${same} video frames at the same pts with the same size; ${differ.length} differ`);
    assert.deepEqual(differ.slice(0, 5), [], edge.stderr());
    assert.ok(same >= 50, `only ${same} of the origin's ${fromOrigin.size} video frames found at their pts in the edge host's recording`);
  });
});
