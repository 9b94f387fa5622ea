// Inputs that only ffmpeg reads, with a real ffmpeg as the encoder: an RTMP listener that an
// encoder publishes FLV to (as OBS does), and an SRT listener that takes MPEG-TS. Each time,
// a second publish after the first ended continues the stream for a player that stayed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { collect, ffmpegPath, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, codecsOf, errorsIgnoringCut, logMessages, pidAlive, pidsWithArg, stopQuietly, waitFor, waitForStats, waitForStream } from './helpers/live.js';
import { assertMonotonicPts, executable, killAllTools, killTool, onPath, packetPts, startTool, toolExit, type Tool } from './helpers/ingest.js';
import { freePort } from '../bench/http.js';

/** A frame of 25 fps video, of an audio frame: how far back a pts may step (it should not at all). */
const ONE_FRAME_S = { video: 0.04, audio: 0.03 };
/** Each publish lasts this long, at 25 fps: one publish alone gives at most 25 × this video frames. */
const PUSH_SECONDS = 5;

/** The first ffmpeg here that has `protocol` (ffmpeg -protocols), npm's first; null if none. */
function ffmpegWith(protocol: string): string | null {
  const candidates = [ffmpegPath, '/usr/bin/ffmpeg', onPath('ffmpeg')].filter((p): p is string => !!p && executable(p));
  for (const bin of new Set(candidates)) {
    try {
      const out = execFileSync(bin, ['-hide_banner', '-protocols'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
      const input = out.split(/^Output:/m)[0] ?? '';
      if (new RegExp(`^\\s*${protocol}\\s*$`, 'm').test(input)) return bin;
    } catch {
      // Not a working ffmpeg: try the next.
    }
  }
  return null;
}

interface ListenerCase {
  title: string;
  ffmpeg: string | null;
  skip?: string;
  /** The input given to the master, listening on `port`. */
  input: (port: number) => string;
  /** What the encoder publishes to. */
  target: (port: number) => string;
  /** Encoder arguments after the lavfi inputs, up to the output format. */
  encode: string[];
  codecs: string[];
}

/** Bounded: start an encoder until the listener takes it (a new header in the log), at most 40 tries. */
async function publishWhenListening(m: RunningMaster, c: ListenerCase, port: number, headersBefore: number): Promise<Tool> {
  const args = [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(PUSH_SECONDS), '-map', '0:v', '-map', '1:a', ...c.encode, c.target(port),
  ];
  const headers = (): number => logMessages(m.stderr()).filter((l) => /stream 'cam': matroska, video/.test(l)).length;
  for (let attempt = 1; attempt <= 40; attempt++) {
    const tool = startTool(c.ffmpeg!, args);
    // The listener's ffmpeg binds a moment after it starts: a refused encoder tries again.
    const taken = await waitFor(`the listener to take encoder attempt ${attempt}`, () => (headers() > headersBefore ? 'taken' : !tool.running() && 'refused'), 15_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}\nencoder: ${tool.output()}\nstderr:\n${m.stderr()}`);
    });
    if (taken === 'taken') return tool;
    await killTool(tool);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no encoder was taken in 40 tries\nstderr:\n${m.stderr()}`);
}

function listenerScenario(c: ListenerCase): void {
  it(c.title, { timeout: 90_000, ...(c.skip ? { skip: c.skip } : {}) }, async () => {
    const port = await freePort();
    let master: RunningMaster | undefined;
    let first: Tool | undefined;
    let second: Tool | undefined;
    try {
      master = await startMaster([`cam=${c.input(port)}`, '--ffmpeg', c.ffmpeg!, '--edges', '1', '--log-format', 'json']);
      const m = master;
      await waitFor('the listener', () => logMessages(m.stderr()).some((l) => /waiting for an encoder on .* \(run 1\)/.test(l)), 10_000);
      first = await publishWhenListening(m, c, port, 0);
      await waitForStream(m, 'cam', 10_000);
      // The player joins during the first publish and records past the end of the second.
      const recording = collect(m.url('/live/cam'), { ms: 3 * PUSH_SECONDS * 1000 + 3000 });
      assert.equal((await toolExit(first, 'the first encoder', PUSH_SECONDS * 1000 + 15_000)).code, 0, first.output());
      // The listener is started again for the next encoder.
      await waitFor('the listener again', () => logMessages(m.stderr()).some((l) => /waiting for an encoder on .* \(run 2\)/.test(l)), 10_000);
      second = await publishWhenListening(m, c, port, 1);
      assert.equal((await toolExit(second, 'the second encoder', PUSH_SECONDS * 1000 + 15_000)).code, 0, second.output());
      const got = await recording;
      assert.equal(got.status, 200);
      assert.equal(got.end, 'ms', 'the player stayed connected between the two publishes');
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.equal(p.firstVideoKey, true, 'first video frame');
      assert.deepEqual(codecsOf(p), c.codecs);
      assert.ok(p.videoPackets > 25 * PUSH_SECONDS + 25, `the player got both publishes: ${p.videoPackets} video frames (one gives at most ${25 * PUSH_SECONDS})\nstderr:\n${m.stderr()}`);
      assertMonotonicPts(await packetPts(got.file), ONE_FRAME_S, 'the player across two publishes');
      assertNoStack(m.stderr());
    } finally {
      await killTool(first);
      await killTool(second);
      await stopQuietly(master);
    }
  });
}

describe('inputs read through ffmpeg: listeners for encoders, pulled URLs', () => {
  after(() => killAllTools());

  const rtmp = ffmpegWith('rtmp');
  listenerScenario({
    title: 'master cam=rtmp://127.0.0.1:P/live/cam?listen=1: ffmpeg publishes FLV (H.264+AAC) twice; a player gets both, timestamps rising',
    ffmpeg: rtmp,
    ...(rtmp ? {} : { skip: 'no ffmpeg here has the rtmp protocol' }),
    input: (port) => `rtmp://127.0.0.1:${port}/live/cam?listen=1`,
    target: (port) => `rtmp://127.0.0.1:${port}/live/cam`,
    encode: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv'],
    codecs: ['video:h264', 'audio:aac'],
  });

  // The parent-death signal needs util-linux's setpriv (Debian's is always there).
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].some((p) => executable(p));
  const crashSkip = !rtmp ? 'no ffmpeg here has the rtmp protocol' : !setpriv ? 'no setpriv here: an ffmpeg outlives a crashed source' : undefined;
  it('SIGKILL of the source: its listening ffmpeg goes with it, the new source listens again and takes the next encoder', { timeout: 90_000, ...(crashSkip ? { skip: crashSkip } : {}) }, async () => {
    const port = await freePort();
    const c: ListenerCase = {
      title: 'rtmp',
      ffmpeg: rtmp,
      input: (p) => `rtmp://127.0.0.1:${p}/live/cam?listen=1`,
      target: (p) => `rtmp://127.0.0.1:${p}/live/cam`,
      encode: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv'],
      codecs: ['video:h264', 'audio:aac'],
    };
    // ffmpeg's argv, NUL-separated in /proc: the master's own `cam=rtmp://…` does not match.
    const listeners = (): Promise<number[]> => pidsWithArg(`\0-i\0rtmp://127.0.0.1:${port}/live/cam\0`);
    let master: RunningMaster | undefined;
    let encoder: Tool | undefined;
    try {
      master = await startMaster([c.input(port), '--name', 'cam', '--ffmpeg', rtmp!, '--edges', '1', '--log-format', 'json']);
      const m = master;
      const [old] = await waitFor('the listening ffmpeg', async () => {
        const pids = await listeners();
        return pids.length === 1 && pids;
      }, 10_000);
      const before = await waitForStats(m, 'a source pid', (st) => st.pids.source !== null);
      process.kill(before.pids.source!, 'SIGKILL');
      await waitForStats(m, 'a new source', (st) => st.pids.source !== null && st.pids.source !== before.pids.source && pidAlive(st.pids.source), 15_000);
      // The old ffmpeg died with its source (it would hold the port); one new one listens.
      await waitFor('one listening ffmpeg, a new one', async () => {
        const pids = await listeners();
        return pids.length === 1 && pids[0] !== old && !pidAlive(old!);
      }, 10_000).catch(async (err: Error) => {
        throw new Error(`${err.message}: ffmpeg pids ${JSON.stringify(await listeners())}, the old one ${old}\nstderr:\n${m.stderr()}`);
      });
      encoder = await publishWhenListening(m, c, port, 0);
      await waitForStream(m, 'cam', 10_000);
      const got = await collect(m.url('/live/cam'), { ms: 2500 });
      assert.equal(got.status, 200);
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.deepEqual(codecsOf(p), c.codecs);
    } finally {
      await killTool(encoder);
      await stopQuietly(master);
    }
  });

  const srt = ffmpegWith('srt');
  if (!srt) console.log('# SRT listener test skipped: no ffmpeg here has libsrt (ffmpeg -protocols lists no srt)');
  listenerScenario({
    // H.264 + AAC in MPEG-TS, as OBS sends over SRT: the audio is re-encoded (ADTS AAC cannot be copied into Matroska).
    title: 'master cam=srt://127.0.0.1:P?mode=listener: ffmpeg sends MPEG-TS (H.264+AAC) twice; a player gets both, timestamps rising',
    ffmpeg: srt,
    ...(srt ? {} : { skip: 'no ffmpeg here has libsrt (ffmpeg -protocols)' }),
    input: (port) => `srt://127.0.0.1:${port}?mode=listener`,
    target: (port) => `srt://127.0.0.1:${port}?mode=caller`,
    encode: ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-f', 'mpegts'],
    codecs: ['video:h264', 'audio:aac'],
  });

  it('master cam=rtmp://127.0.0.1:P/live/cam pulls from an RTMP server; the server goes away and comes back; the player gets both, timestamps rising', { timeout: 90_000, ...(rtmp ? {} : { skip: 'no ffmpeg here has the rtmp protocol' }) }, async () => {
    const port = await freePort();
    // ffmpeg as an RTMP server: with -listen 1 its output waits for a client that plays it.
    const serve = (seconds: number): Tool =>
      startTool(rtmp!, [
        '-nostdin', '-hide_banner', '-loglevel', 'error', '-re',
        '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
        '-t', String(seconds), '-map', '0:v', '-map', '1:a',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
        '-f', 'flv', '-listen', '1', `rtmp://127.0.0.1:${port}/live/cam`,
      ]);
    let master: RunningMaster | undefined;
    let first: Tool | undefined;
    let second: Tool | undefined;
    try {
      first = serve(PUSH_SECONDS);
      master = await startMaster([`cam=rtmp://127.0.0.1:${port}/live/cam`, '--ffmpeg', rtmp!, '--edges', '1', '--log-format', 'json']);
      const m = master;
      await waitForStream(m, 'cam', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\nserver: ${first?.output()}\nstderr:\n${m.stderr()}`);
      });
      const recording = collect(m.url('/live/cam'), { ms: 3 * PUSH_SECONDS * 1000 + 3000 });
      assert.equal((await toolExit(first, 'the first server', PUSH_SECONDS * 1000 + 15_000)).code, 0, first.output());
      // Gone until the next one listens: the master's ffmpeg is refused and retries with backoff.
      second = serve(PUSH_SECONDS);
      assert.equal((await toolExit(second, 'the second server', PUSH_SECONDS * 1000 + 20_000)).code, 0, second.output());
      const got = await recording;
      assert.equal(got.status, 200);
      assert.equal(got.end, 'ms', 'the player stayed connected while the server was away');
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.deepEqual(codecsOf(p), ['video:h264', 'audio:aac']);
      assert.ok(p.videoPackets > 25 * PUSH_SECONDS + 25, `the player got both servers' media: ${p.videoPackets} video frames\nstderr:\n${m.stderr()}`);
      assertMonotonicPts(await packetPts(got.file), ONE_FRAME_S, 'the player across two servers');
      assert.ok(logMessages(m.stderr()).some((l) => /reading rtmp:\/\/127\.0\.0\.1:\d+\/live\/cam through ffmpeg \(run 2\)/.test(l)), 'pulled again');
      assertNoStack(m.stderr());
    } finally {
      await killTool(first);
      await killTool(second);
      await stopQuietly(master);
    }
  });

  it('master tv=http://…/live.m3u8: a live HLS playlist (fMP4, H.264+AAC) is pulled through ffmpeg; a player decodes it', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-hls-'));
    // A static file server for the playlist and its segments, as a CDN would be.
    const server = http.createServer((req, res) => {
      const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
      const type = name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : name.endsWith('.m4s') || name.endsWith('.mp4') ? 'video/iso.segment' : 'application/octet-stream';
      const file = createReadStream(path.join(dir, name));
      file.once('open', () => {
        res.writeHead(200, { 'Content-Type': type });
        file.pipe(res);
      });
      file.once('error', () => res.writeHead(404).end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    let master: RunningMaster | undefined;
    let encoder: Tool | undefined;
    try {
      const SECONDS = 14;
      encoder = startTool(ffmpegPath, [
        '-nostdin', '-hide_banner', '-loglevel', 'error', '-re',
        '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
        '-t', String(SECONDS), '-map', '0:v', '-map', '1:a',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k',
        '-f', 'hls', '-hls_time', '1', '-hls_list_size', '6', '-hls_segment_type', 'fmp4', '-hls_flags', 'temp_file',
        path.join(dir, 'live.m3u8'),
      ]);
      const e = encoder;
      await waitFor('the first HLS segments', async () => (await fetch(`http://127.0.0.1:${port}/live.m3u8`)).status === 200 && e.running(), 15_000, 100);
      master = await startMaster([`tv=http://127.0.0.1:${port}/live.m3u8`, '--ffmpeg', ffmpegPath, '--edges', '1', '--log-format', 'json']);
      const m = master;
      await waitForStream(m, 'tv', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\nencoder: ${e.output()}\nstderr:\n${m.stderr()}`);
      });
      const got = await collect(m.url('/live/tv'), { ms: 5000 });
      assert.equal(got.status, 200);
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.equal(p.firstVideoKey, true, 'first video frame');
      assert.deepEqual(codecsOf(p), ['video:h264', 'audio:aac']);
      assert.ok(p.videoPackets >= 25, `a second of video at least: ${p.videoPackets} frames`);
      assert.ok(logMessages(m.stderr()).some((l) => /reading http:\/\/127\.0\.0\.1:\d+\/live\.m3u8 through ffmpeg \(run 1\)/.test(l)), 'read through ffmpeg');
      assertNoStack(m.stderr());
    } finally {
      await killTool(encoder);
      await stopQuietly(master);
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });

  // An RTSP camera (GStreamer's RTSP server, from Python): test/ingest-rtsp.test.ts.
});
