// What players receive over time: joining mid-stream (at a keyframe, also when the input's
// Clusters are not cut at keyframes, and when its timestamps start at 20541 s), real-time
// pacing, and the end of a file (every byte, then the connection closes, then the master exits).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, frameMd5, makeClip, probe, type ClipKind, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import {
  assertFramesSuffix,
  assertNoStack,
  assertSameFrames,
  exitWithin,
  problemLines,
  stopQuietly,
  streamName,
  waitForStream,
} from './helpers/live.js';

const CLIP_S = 10;
const JOIN_AFTER_MS = 3000;

interface Timed {
  result: CollectResult;
  /** Wall time from the request to the end of the body, ms. */
  elapsedMs: number;
}

async function timedCollect(url: string, ms: number): Promise<Timed> {
  const t0 = performance.now();
  const result = await collect(url, { ms });
  return { result, elapsedMs: performance.now() - t0 };
}

/**
 * One master per clip kind: player A from the start, player B from about 3 s in, and a
 * third one that reads only what arrived in its first 3 s (real-time pacing).
 */
for (const kind of ['webm-vp8-opus', 'piped-mkv', 'webm-late-start'] as ClipKind[]) {
  describe(`${kind}: joining mid-stream`, () => {
    let clip: string;
    let original: ProbeResult;
    let master: RunningMaster | undefined;
    let early: Timed;
    let late: Timed;
    let sample: CollectResult;
    let exit: { code: number | null };
    let pEarly: ProbeResult;
    let pLate: ProbeResult;
    /** Wall time from the master's start to the late player's request, s: the most media there was. */
    let lateAfterS: number;

    before(async () => {
      clip = await makeClip(kind, { seconds: CLIP_S });
      original = await probe(clip);
      const startedAt = performance.now();
      master = await startMaster([clip, '--edges', '2']);
      const url = master.url(`/live/${streamName(clip)}`);
      await waitForStream(master, streamName(clip));
      const a = timedCollect(url, CLIP_S * 1000 + 15_000);
      const s = collect(url, { ms: JOIN_AFTER_MS });
      await sleep(JOIN_AFTER_MS); // the scenario: a player that comes about 3 s in
      lateAfterS = (performance.now() - startedAt) / 1000;
      late = await timedCollect(url, CLIP_S * 1000 + 15_000);
      early = await a;
      sample = await s;
      exit = await exitWithin(master, 20_000);
      [pEarly, pLate] = await Promise.all([probe(early.result.file), probe(late.result.file)]);
    });

    after(() => stopQuietly(master));

    it('a player from the start: first byte within 1 s, same frames as the file', async () => {
      assert.equal(early.result.status, 200);
      assert.ok(early.result.firstByteMs !== null && early.result.firstByteMs < 1000, `first byte after ${early.result.firstByteMs} ms`);
      assert.equal(pEarly.errors, '');
      assert.equal(pEarly.firstVideoKey, true);
      assertSameFrames(await frameMd5(early.result.file), await frameMd5(clip), 'player from the start');
    });

    it('media flows in real time: about 3 s of media in the first 3 s, the whole clip over about its length', () => {
      // What the sample player got in 3 s is a prefix of what the early one got: compare sizes.
      const share = sample.bytes / early.result.bytes;
      assert.equal(sample.end, 'ms', 'the sample player should still be connected after 3 s');
      assert.ok(share > 0.15 && share < 0.6, `after 3 s a player had ${(share * 100).toFixed(0)} % of the clip's bytes`);
      assert.ok(
        early.elapsedMs > (CLIP_S - 2.5) * 1000 && early.elapsedMs < (CLIP_S + 5) * 1000,
        `a ${CLIP_S} s clip took ${Math.round(early.elapsedMs)} ms to play out`,
      );
    });

    it('a player joining after 3 s: first byte within 1 s, starts on a keyframe, decodes cleanly', () => {
      assert.equal(late.result.status, 200);
      assert.ok(late.result.firstByteMs !== null && late.result.firstByteMs < 1000, `first byte after ${late.result.firstByteMs} ms`);
      assert.equal(late.result.end, 'closed');
      assert.equal(pLate.errors, '', 'decode errors');
      assert.equal(pLate.firstVideoKey, true, 'first video frame');
    });

    it('it joined at the newest keyframe (not the start), and has every frame from there on', async () => {
      const t0 = original.firstPtsS!;
      const offset = pLate.firstPtsS! - t0;
      // Keyframes every 1 s (webm) or 2 s (piped-mkv); the join came 3 s in or (busy machine) later,
      // and the stream is paced: the newest keyframe then was at most that far in (+1 s of slack).
      assert.ok(offset >= 0.9 && offset <= lateAfterS + 1, `joined at +${offset.toFixed(3)} s, ${lateAfterS.toFixed(3)} s after the master started`);
      assert.ok(pLate.videoPackets < original.videoPackets - 20, `${pLate.videoPackets} of ${original.videoPackets} video frames`);
      assertFramesSuffix(await frameMd5(late.result.file), await frameMd5(clip), 'player joining late');
    });

    it('timestamps are passed through unchanged (no rebase for a single pass)', () => {
      assert.ok(Math.abs(pEarly.firstPtsS! - original.firstPtsS!) < 0.002, `${pEarly.firstPtsS} vs ${original.firstPtsS}`);
    });

    it('the master exits 0 when the clip has been played out', () => {
      assert.equal(exit.code, 0, master?.stderr());
      assertNoStack(master!.stderr());
    });
  });
}

/** A player that stops reading for `pauseMs` after the response head, then reads to the end. */
function slowReader(url: string, pauseMs: number): Promise<{ status: number; bytes: number; body: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const body: Buffer[] = [];
      let bytes = 0;
      res.pause();
      setTimeout(() => res.resume(), pauseMs);
      res.on('data', (c: Buffer) => {
        body.push(c);
        bytes += c.length;
      });
      res.once('close', () => resolve({ status: res.statusCode ?? 0, bytes, body }));
    });
    req.once('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('slow reader timed out')));
  });
}

describe('end of file', () => {
  const SECONDS = 8;
  let clip: string;
  let master: RunningMaster | undefined;
  let a: CollectResult;
  let b: CollectResult;
  let slow: { status: number; bytes: number };
  let startedAt: number;
  let closedAt: number;
  let exitedAt: number;
  let exit: { code: number | null };

  before(async () => {
    clip = await makeClip('webm-vp8-opus', { seconds: SECONDS });
    master = await startMaster([clip, '--edges', '2']);
    startedAt = performance.now();
    const url = master.url(`/live/${streamName(clip)}`);
    await waitForStream(master, streamName(clip));
    const pa = collect(url, { ms: 30_000 });
    const pb = collect(url, { ms: 30_000 });
    // Stops reading until after the end of the input: the edge must still send it everything.
    const ps = slowReader(url, SECONDS * 1000 + 1000);
    [a, b] = await Promise.all([pa, pb]);
    closedAt = performance.now();
    slow = await ps;
    exit = await exitWithin(master, 20_000);
    exitedAt = performance.now();
  });

  after(() => stopQuietly(master));

  it('two players from the start get the same bytes, the file\'s frames, then the connection closes', async () => {
    assert.equal(a.status, 200);
    assert.equal(a.end, 'closed');
    assert.equal(b.end, 'closed');
    assert.equal(a.bytes, b.bytes, 'both players from the start get the same number of bytes');
    assertSameFrames(await frameMd5(a.file), await frameMd5(clip), 'player A');
  });

  it('a player that stopped reading before the end still gets every byte', () => {
    assert.equal(slow.status, 200);
    assert.equal(slow.bytes, a.bytes);
  });

  it('the master exits 0 within a few seconds of the clip\'s end', () => {
    assert.equal(exit.code, 0, master?.stderr());
    const total = (exitedAt - startedAt) / 1000;
    assert.ok(total < SECONDS + 5, `master ran ${total.toFixed(1)} s for a ${SECONDS} s clip`);
    assert.ok((closedAt - startedAt) / 1000 < SECONDS + 3, 'players were closed soon after the end');
    assert.deepEqual(problemLines(master!.stderr()), []);
  });
});
