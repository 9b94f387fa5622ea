// Inputs that a master pulls or listens for, with real peers: another mkvcast (two masters
// chained, the origin's publisher killed and restarted), Icecast 2 serving a WebM mount, and a
// sender on a tcp:// port.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, ffmpegPath, frameMd5, makeClip, probe, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, codecsOf, errorsIgnoringCut, stopQuietly, waitFor, waitForStream } from './helpers/live.js';
import {
  assertFramesRun,
  assertMonotonicPts,
  ffmpegIcecastPublisher,
  framesByStream,
  indexOfRun,
  killAllTools,
  killTool,
  makeDistinctClip,
  packetPts,
  startTool,
  toolExit,
  type Tool,
} from './helpers/ingest.js';
import { freePort } from '../bench/http.js';
import { icecastSupport } from '../bench/icecastConfig.js';
import { startIcecast } from '../bench/icecast.js';
import type { ServerUnderTest } from '../bench/server.js';

const KEY = 'chain-key';
/** A frame of 25 fps video, of 20 ms Opus: how far back a pts may step (it should not at all). */
const ONE_FRAME_S = { video: 0.04, audio: 0.02 };

interface ChainCase {
  title: string;
  /** A's --grace: long enough for the publisher to return, or so short that A's stream ends. */
  aGraceS: number;
  /** From the kill of A's publisher to the start of the next one. */
  gapMs: number;
  /** How long B's player records (it joins about 1 s into the first publisher's clip). */
  recordMs: number;
  /** Whether B's player must get the second publisher's clip from its first frame. */
  fromFirstFrame: boolean;
}

/**
 * Master A publish-only with an ffmpeg publisher (real time); master B pulls A's stream; a
 * player on B records while A's publisher is SIGKILLed and, after a gap, a new one starts with
 * a different clip of the same codecs: what B's player got before and after the gap can be
 * told apart frame by frame.
 */
function chainScenario(c: ChainCase): void {
  describe(c.title, () => {
    const CLIP_SECONDS = 10;
    const KILL_AFTER_MS = 3500;
    let clips: [string, string];
    let a: RunningMaster | undefined;
    let b: RunningMaster | undefined;
    let first: Tool | undefined;
    let second: Tool | undefined;
    let got: CollectResult | undefined;
    let p: ProbeResult | undefined;
    let killedAfterMs = 0;
    let restartedAfterMs = 0;
    let aliveAfter = { a: false, b: false };

    before(async () => {
      clips = [await makeDistinctClip(1, CLIP_SECONDS), await makeDistinctClip(2, CLIP_SECONDS)];
      a = await startMaster(['--edges', '1', '--publish-key', KEY, '--grace', String(c.aGraceS)]);
      const am = a;
      first = ffmpegIcecastPublisher(clips[0], am.port, 'x', KEY);
      await waitForStream(am, 'x', 8000).catch((err: Error) => {
        throw new Error(`${err.message}\npublisher: ${first?.output()}\nA's stderr:\n${am.stderr()}`);
      });
      b = await startMaster([`x=${am.url('/live/x')}`, '--edges', '2', '--grace', '10']);
      const bm = b;
      await waitForStream(bm, 'x', 8000).catch((err: Error) => {
        throw new Error(`${err.message}\nB's stderr:\n${bm.stderr()}\nA's stderr:\n${am.stderr()}`);
      });
      const t0 = performance.now();
      const recording = collect(bm.url('/live/x'), { ms: c.recordMs });
      await sleep(KILL_AFTER_MS);
      first.proc.kill('SIGKILL');
      killedAfterMs = performance.now() - t0;
      await first.exited;
      await sleep(c.gapMs);
      second = ffmpegIcecastPublisher(clips[1], am.port, 'x', KEY);
      restartedAfterMs = performance.now() - t0;
      got = await recording;
      aliveAfter = { a: am.proc.exitCode === null, b: bm.proc.exitCode === null };
      if (got.status === 200) p = await probe(got.file);
    });

    after(async () => {
      await killAllTools();
      await stopQuietly(b);
      await stopQuietly(a);
    });

    const context = (): string =>
      `killed at ${Math.round(killedAfterMs)} ms, restarted at ${Math.round(restartedAfterMs)} ms of B's ${c.recordMs} ms recording\n` +
      `second publisher: ${second?.output()}\nA's stderr:\n${a?.stderr()}\nB's stderr:\n${b?.stderr()}`;

    it('B\'s player gets 200 and its connection stays open through the gap', () => {
      assert.equal(got?.status, 200, context());
      assert.equal(got.end, 'ms', `B closed its player's connection (${got.end}${got.error ? `: ${got.error}` : ''}); ${context()}`);
      assert.ok(second?.running(), `the second publisher stopped early: ${second?.output()}`);
    });

    it('what B\'s player received decodes cleanly, from a keyframe', () => {
      assert.ok(p, `no recording; ${context()}`);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; ${context()}`);
      assert.equal(p.firstVideoKey, true);
      assert.deepEqual(codecsOf(p), ['video:vp8', 'audio:opus']);
    });

    it('timestamps never go back (per stream, by more than a frame) across the gap', async () => {
      assert.ok(got?.status === 200, context());
      assertMonotonicPts(await packetPts(got.file), ONE_FRAME_S, 'B\'s player');
    });

    it(`frames: a run of the first publisher's clip, then ${c.fromFirstFrame ? 'the second clip from its first frame on' : 'a run of the second clip'}`, async (t) => {
      assert.ok(got?.status === 200, context());
      const received = framesByStream(await frameMd5(got.file));
      const [before, after] = await Promise.all(clips.map(async (clip) => framesByStream(await frameMd5(clip))));
      assert.deepEqual([...received.keys()].sort(), ['0', '1'], 'streams');
      for (const [stream, all] of received) {
        // The recording was cut by us: its last block may be incomplete.
        const frames = all.slice(0, -2);
        const wantBefore = before!.get(stream)!;
        const wantAfter = after!.get(stream)!;
        // The longest prefix of what was received that is a contiguous run of the first clip.
        const start = wantBefore.indexOf(frames[0]!);
        assert.ok(start >= 0, `stream ${stream}: the first received frame is not from the first publisher's clip`);
        let n = 0;
        while (n < frames.length && wantBefore[start + n] === frames[n]) n++;
        const rest = frames.slice(n);
        const restAt = wantAfter.indexOf(rest[0]!);
        t.diagnostic(`stream ${stream}: ${n} frames of the first clip (from #${start}), then ${rest.length} of the second (from #${restAt})`);
        assert.ok(n >= (stream === '0' ? 25 : 50), `stream ${stream}: only ${n} frames before the gap`);
        // 3 s or more of the second publisher's clip.
        const minAfter = stream === '0' ? 75 : 150;
        assert.ok(rest.length >= minAfter, `stream ${stream}: ${rest.length} frames after the gap, expected ≥ ${minAfter}; ${context()}`);
        const at = indexOfRun(wantAfter, rest);
        assert.ok(at >= 0, `stream ${stream}: the ${rest.length} frames after the first clip's run are not a contiguous run of the second clip ` +
          `(the first of them ${restAt < 0 ? 'is in neither clip' : `is the second clip's #${restAt}`})`);
        // The origin forwards the new publisher from its first Cluster to a connected player: nothing of it is lost.
        if (c.fromFirstFrame) assert.equal(at, 0, `stream ${stream}: the second clip is received from its frame #${at}, not #0`);
      }
    });

    if (!c.fromFirstFrame) {
      it('the scenario did what it says: A\'s stream was gone for a while and B retried it', () => {
        assert.match(b?.stderr() ?? '', /upstream .*HTTP 404[^]*retrying/, `B's stderr:\n${b?.stderr()}`);
      });
    } else {
      it('A kept B\'s connection (a player of A) open through the gap: B never reconnected', () => {
        const lines = (b?.stderr() ?? '').split('\n').filter((l) => /upstream|retrying|attempt/i.test(l));
        assert.deepEqual(lines, [], `B's stderr:\n${b?.stderr()}`);
      });
    }

    it('both masters stay up, without stack traces', () => {
      assert.deepEqual(aliveAfter, { a: true, b: true }, context());
      assertNoStack(a?.stderr() ?? '');
      assertNoStack(b?.stderr() ?? '');
    });
  });
}

chainScenario({
  title: 'two masters chained: A\'s publisher is killed and a new one comes within A\'s grace; B\'s player plays on',
  aGraceS: 8,
  gapMs: 1500,
  recordMs: 11_000,
  fromFirstFrame: true,
});

chainScenario({
  title: 'two masters chained: A\'s stream ends (--grace 1) and comes back; B reconnects to it and its player plays on',
  aGraceS: 1,
  gapMs: 3000,
  recordMs: 15_000,
  fromFirstFrame: false,
});

describe('Icecast 2 as the upstream', () => {
  it('mkvcast pulls an Icecast WebM mount; a player decodes it from a keyframe', { timeout: 90_000 }, async (t) => {
    const support = await icecastSupport(ffmpegPath, null);
    if (!support.ok) {
      t.skip(`Icecast as upstream not tested: ${support.reason}`);
      return;
    }
    const clip = await makeDistinctClip(3, 10);
    let icecast: ServerUnderTest | undefined;
    let master: RunningMaster | undefined;
    try {
      icecast = await startIcecast({ bin: support.bin, shareDir: support.shareDir, ffmpeg: ffmpegPath, clip, players: 10, verbose: false });
      const ice = icecast;
      master = await startMaster([`ice=${ice.url}`, '--edges', '1']);
      const m = master;
      await waitForStream(m, 'ice', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\nmaster stderr:\n${m.stderr()}\n${ice.tail()}`);
      });
      const got = await collect(m.url('/live/ice'), { ms: 6000 });
      assert.equal(got.status, 200, m.stderr());
      assert.equal(got.headers['content-type'], 'video/webm');
      assert.equal(got.end, 'ms', `the player's connection ended early (${got.end}); stderr:\n${m.stderr()}\n${ice.tail()}`);
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.equal(p.firstVideoKey, true, 'first video frame');
      assert.deepEqual(codecsOf(p), ['video:vp8', 'audio:opus']);
      assert.ok(p.videoPackets >= 75, `${p.videoPackets} video frames in 6 s`);
      // Icecast loops the clip: the frames are a contiguous run of the clip played twice over.
      const lines = await frameMd5(clip);
      const received = (await frameMd5(got.file)).slice(0, -4); // the last few may be cut mid-block by us
      assertFramesRun(received, [...lines, ...lines], 'player of the Icecast relay', 50);
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
      await icecast?.stop();
    }
  });
});

describe('a tcp:// input', () => {
  after(() => killAllTools());

  it('master cam=tcp://127.0.0.1:PORT; ffmpeg sends Matroska to it; a player decodes it', { timeout: 60_000 }, async () => {
    const SECONDS = 8;
    const clip = await makeClip('mkv-h264-aac', { seconds: SECONDS });
    const port = await freePort();
    let master: RunningMaster | undefined;
    let sender: Tool | undefined;
    try {
      master = await startMaster([`cam=tcp://127.0.0.1:${port}`, '--edges', '1', '--grace', '1']);
      const m = master;
      // The source listens once the master has started it: its log line says when.
      await waitFor('the tcp listener', () => m.stderr().includes(`listening for a sender on tcp://127.0.0.1:${port}`), 10_000).catch((err: Error) => {
        throw new Error(`${err.message}\nstderr:\n${m.stderr()}`);
      });
      sender = startTool(ffmpegPath, ['-nostdin', '-loglevel', 'error', '-re', '-i', clip, '-map', '0', '-c', 'copy', '-f', 'matroska', `tcp://127.0.0.1:${port}`]);
      await waitForStream(m, 'cam', 8000).catch((err: Error) => {
        throw new Error(`${err.message}\nsender: ${sender?.output()}\nstderr:\n${m.stderr()}`);
      });
      const recording = collect(m.url('/live/cam'), { ms: SECONDS * 1000 + 3000 });
      const { code } = await toolExit(sender, 'the ffmpeg sender', SECONDS * 1000 + 10_000);
      assert.equal(code, 0, `ffmpeg: ${sender.output()}\nstderr:\n${m.stderr()}`);
      const got = await recording;
      assert.equal(got.status, 200);
      assert.equal(got.headers['content-type'], 'video/x-matroska');
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.equal(p.firstVideoKey, true, 'first video frame');
      assert.deepEqual(codecsOf(p), ['video:h264', 'audio:aac']);
      // The sender finished before the recording did: the player holds the clip's last frames.
      assertFramesRun(await frameMd5(got.file), await frameMd5(clip), 'player of the tcp input', 50);
      const want = framesByStream(await frameMd5(clip)).get('0')!;
      const last = framesByStream(await frameMd5(got.file)).get('0')!.at(-1);
      assert.equal(last, want.at(-1), 'the player got the clip up to its last video frame');
      assertNoStack(m.stderr());
    } finally {
      await killTool(sender);
      await stopQuietly(master);
    }
  });
});
