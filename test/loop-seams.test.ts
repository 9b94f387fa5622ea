// `--loop` seams carry no timestamp holes: a looped clip played through two seams has, by
// ffprobe, packets whose steps never exceed one frame duration plus one frame (the shorter
// track keeps only what the clip had between its tracks' ends), the track that ends last goes
// on without any hole, and no track steps back. A plain MSE player stalls for good at a hole.
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MatroskaScanner } from '@mkvcast/shared';
import { makeClip, probe, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { stopQuietly, streamName, waitForStream } from './helpers/live.js';
import { packetPts } from './helpers/ingest.js';

const CLIP_S = 2;
/** Media the player must get: two seams and half a second past the second. */
const WANT_MS = 2 * CLIP_S * 1000 + 500;
const RECORD_TIMEOUT_MS = 30_000;

/**
 * Records a live stream until its Cluster timestamps have advanced `wantMs` past the first
 * (parsed as it arrives with the project's scanner), or fails after `timeoutMs`.
 */
async function recordMedia(url: string, wantMs: number, timeoutMs: number): Promise<string> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'mkvcast-loop-')), 'body.webm');
  const out = createWriteStream(file);
  await new Promise<void>((resolve, reject) => {
    const scanner = new MatroskaScanner();
    let first: number | undefined;
    const req = http.get(url, { agent: false }, (res) => {
      res.on('data', (chunk: Buffer) => {
        out.write(chunk);
        for (const e of scanner.push(chunk)) {
          if (e.kind !== 'cluster-start') continue;
          first ??= e.timestamp;
          if (e.timestamp - first >= wantMs) {
            clearTimeout(timer);
            req.destroy();
            resolve();
          }
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`the player did not get ${wantMs} ms of media within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => out.end(resolve));
  return file;
}

interface Steps {
  type: string;
  /** The usual step between packets (the frame duration), ms. */
  frameMs: number;
  /** Steps between consecutive pts (sorted), ms, rounded to 1 µs. */
  steps: number[];
  /** pts that come before the largest pts so far, in file order. */
  backwards: number;
}

function stepsOf(type: string, pts: number[]): Steps {
  let max = -Infinity;
  let backwards = 0;
  for (const t of pts) {
    if (t < max) backwards++;
    max = Math.max(max, t);
  }
  const sorted = [...pts].sort((a, b) => a - b);
  const steps = sorted.slice(1).map((t, i) => Math.round((t - sorted[i]!) * 1e6) / 1e3);
  const counts = new Map<number, number>();
  for (const s of steps) counts.set(s, (counts.get(s) ?? 0) + 1);
  const frameMs = [...counts].sort((a, b) => b[1] - a[1])[0]![0];
  return { type, frameMs, steps, backwards };
}

describe('--loop: a clip played through two seams', () => {
  let master: RunningMaster | undefined;
  let original: ProbeResult;
  let recorded: ProbeResult;
  let streams: Steps[];

  before(async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: CLIP_S });
    original = await probe(clip);
    master = await startMaster([clip, '--loop', '--edges', '1']);
    await waitForStream(master, streamName(clip));
    const file = await recordMedia(master.url(`/live/${streamName(clip)}`), WANT_MS, RECORD_TIMEOUT_MS);
    recorded = await probe(file);
    streams = [...(await packetPts(file)).values()].map(({ type, pts }) => stepsOf(type, pts));
  });

  after(() => stopQuietly(master));

  it('the recording spans two seams, with video and audio', () => {
    assert.ok(original.lastPtsS !== null && original.lastPtsS < CLIP_S + 0.1);
    assert.ok(recorded.lastPtsS! - recorded.firstPtsS! > 2 * CLIP_S, `recorded ${recorded.firstPtsS} .. ${recorded.lastPtsS} s`);
    assert.deepEqual(streams.map((s) => s.type).sort(), ['audio', 'video']);
    assert.deepEqual(Object.fromEntries(streams.map((s) => [s.type, s.frameMs])), { audio: 20, video: 40 });
  });

  it('no track steps back, and no packet step leaves a hole of more than one frame', () => {
    for (const s of streams) {
      assert.equal(s.backwards, 0, `${s.type}: packets going back in time`);
      const worst = Math.max(...s.steps);
      assert.ok(worst - s.frameMs <= s.frameMs, `${s.type}: a hole of ${worst - s.frameMs} ms after a frame of ${s.frameMs} ms`);
      assert.ok(Math.min(...s.steps) > 0, `${s.type}: two packets at the same time`);
    }
  });

  it('the track that ends last goes on without a hole: frame durations continue across the seam', (t) => {
    const holes = streams.map((s) => Math.max(...s.steps) - s.frameMs);
    t.diagnostic(`largest hole: ${streams.map((s, i) => `${s.type} ${holes[i]} ms`).join(', ')}`);
    assert.ok(Math.min(...holes) <= 1, `every track has a hole at the seams: ${streams.map((s, i) => `${s.type} ${holes[i]} ms`).join(', ')}`);
  });
});
