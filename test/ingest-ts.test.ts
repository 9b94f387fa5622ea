// MPEG-TS with H.264 + AAC (as recording devices send it) and files ffmpeg must seek, served as
// Matroska that decodes: ffmpeg POSTing `-f mpegts`, a chunked PUT of a .ts file, ffmpeg sending
// to a tcp:// input, a .ts file input, and an MP4 with its index (moov) at the end as a file input. Real ffmpeg, ffprobe.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { collect, ffmpegPath, makeClip, probe, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, clipCopy, codecsOf, errorsIgnoringCut, stopQuietly, streamName, waitFor, waitForStream } from './helpers/live.js';
import { chunkedUpload, killAllTools, killTool, startTool, toolExit, type Tool, waitForPublished } from './helpers/ingest.js';
import { freePort } from '../bench/http.js';

const SECONDS = 8;
/** Media a player of a live upload may miss at its start (see assertPlayed). */
const MAY_MISS_S = 4;

const ffmpeg = (args: string[]): Promise<unknown> =>
  promisify(execFile)(ffmpegPath, ['-nostdin', '-v', 'error', '-y', ...args], { timeout: 60_000 });

/** What a player of a remuxed stream must show: H.264 + AAC, decodable, most frames. */
async function assertPlayed(got: CollectResult, source: ProbeResult, what: string, stderr: string, live = false): Promise<void> {
  assert.equal(got.status, 200, what);
  assert.equal(got.headers['content-type'], 'video/x-matroska', what);
  // A live input (tcp) outlives its sender: the player is cut off by the test.
  if (!live) assert.equal(got.end, 'closed', `${what}: the stream should end with its input`);
  const p = await probe(got.file);
  assert.equal(live ? errorsIgnoringCut(p) : p.errors, '', `${what}: decode errors\nstderr:\n${stderr}`);
  assert.equal(p.firstVideoKey, true, `${what}: first video frame`);
  assert.deepEqual(codecsOf(p), ['video:h264', 'audio:aac'], what);
  // A player joins at the newest keyframe (one per second here) once ffmpeg has probed a
  // live input (2 s): about 3 s are missed, up to half the clip on a busy machine.
  const kept = (1 - MAY_MISS_S / SECONDS);
  assert.ok(p.videoPackets >= source.videoPackets * kept && p.videoPackets <= source.videoPackets, `${what}: ${p.videoPackets} of ${source.videoPackets} video frames`);
  assert.ok(p.audioPackets >= source.audioPackets * kept, `${what}: ${p.audioPackets} of ${source.audioPackets} audio frames`);
}

/** The MP4 boxes at the top level of a file, in order. */
function topBoxes(data: Buffer): string[] {
  const boxes: string[] = [];
  for (let at = 0; at + 8 <= data.length && boxes.length < 32; ) {
    const size = data.readUInt32BE(at);
    boxes.push(data.subarray(at + 4, at + 8).toString('latin1'));
    if (size < 8) break;
    at += size;
  }
  return boxes;
}

describe('MPEG-TS with H.264 + AAC is served as Matroska (--ffmpeg)', () => {
  let tsFile: string;
  let source: ProbeResult;

  before(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-ts-'));
    tsFile = path.join(dir, 'clip.ts');
    // No B-frames: this ffmpeg rounds their timestamps to colliding ms in Matroska (its own
    // file-to-file remux decodes with "non monotonically increasing dts"), which is not ours to test.
    await ffmpeg([
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', String(SECONDS), '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-g', '25',
      '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-ac', '2', '-f', 'mpegts', tsFile,
    ]);
    // Counted on ffmpeg's own file-to-file remux (the npm ffprobe crashes listing a TS's packets).
    const reference = path.join(dir, 'reference.mkv');
    await ffmpeg(['-i', tsFile, '-map', '0', '-c', 'copy', '-f', 'matroska', reference]);
    source = await probe(reference);
    assert.equal(source.errors, '', 'the reference decodes');
    assert.deepEqual(codecsOf(source), ['video:h264', 'audio:aac'], 'the reference');
  });

  after(() => killAllTools());

  it('ffmpeg POSTing -f mpegts: players get H.264 + AAC that decodes', { timeout: 60_000 }, async () => {
    let master: RunningMaster | undefined;
    try {
      master = await startMaster(['--edges', '1', '--grace', '1', '--ffmpeg', ffmpegPath]);
      const m = master;
      const publisher = startTool(ffmpegPath, [
        '-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-i', tsFile,
        '-map', '0', '-c', 'copy', '-f', 'mpegts', '-method', 'POST', m.url('/live/ts-post'),
      ]);
      await waitForStream(m, 'ts-post', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\npublisher: ${publisher.output()}\nstderr:\n${m.stderr()}`);
      });
      const got = await collect(m.url('/live/ts-post'), { ms: SECONDS * 1000 + 15_000 });
      const exit = await toolExit(publisher, 'the publishing ffmpeg', 15_000);
      assert.equal(exit.code, 0, publisher.output());
      await assertPlayed(got, source, 'ffmpeg POST', m.stderr());
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });

  it('a chunked PUT of a .ts file: 200 to the publisher, players get H.264 + AAC that decodes', { timeout: 60_000 }, async () => {
    let master: RunningMaster | undefined;
    try {
      master = await startMaster(['--edges', '1', '--grace', '1', '--ffmpeg', ffmpegPath]);
      const m = master;
      const upload = chunkedUpload(m.url('/live/ts-put'), await readFile(tsFile), { seconds: SECONDS, method: 'PUT', headers: { 'Content-Type': 'video/mp2t' } });
      await waitForPublished(m, 'ts-put', upload);
      const got = await collect(m.url('/live/ts-put'), { ms: SECONDS * 1000 + 15_000 });
      const answer = await upload;
      assert.equal(answer.status, 200, `publisher's answer: ${answer.error ?? answer.body}\nstderr:\n${m.stderr()}`);
      await assertPlayed(got, source, 'chunked PUT', m.stderr());
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });

  it('ffmpeg sending -f mpegts to a tcp:// input: players get H.264 + AAC that decodes', { timeout: 60_000 }, async () => {
    const port = await freePort();
    let master: RunningMaster | undefined;
    let sender: Tool | undefined;
    try {
      master = await startMaster([`cam=tcp://127.0.0.1:${port}`, '--edges', '1', '--ffmpeg', ffmpegPath]);
      const m = master;
      await waitFor('the tcp listener', () => m.stderr().includes(`listening for a sender on tcp://127.0.0.1:${port}`), 10_000);
      sender = startTool(ffmpegPath, ['-nostdin', '-loglevel', 'error', '-re', '-i', tsFile, '-map', '0', '-c', 'copy', '-f', 'mpegts', `tcp://127.0.0.1:${port}`]);
      await waitForStream(m, 'cam', 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\nsender: ${sender?.output()}\nstderr:\n${m.stderr()}`);
      });
      const got = collect(m.url('/live/cam'), { ms: SECONDS * 1000 + 3000 });
      const { code } = await toolExit(sender, 'the ffmpeg sender', SECONDS * 1000 + 10_000);
      assert.equal(code, 0, sender.output());
      await assertPlayed(await got, source, 'tcp', m.stderr(), true);
      assertNoStack(m.stderr());
    } finally {
      await killTool(sender);
      await stopQuietly(master);
    }
  });

  it('a .ts file input: players get H.264 + AAC that decodes', { timeout: 60_000 }, async () => {
    let master: RunningMaster | undefined;
    try {
      const file = await clipCopy(tsFile, 'ts-file.ts');
      master = await startMaster([file, '--edges', '1', '--ffmpeg', ffmpegPath]);
      const m = master;
      await waitForStream(m, streamName(file), 15_000);
      const got = await collect(m.url(`/live/${streamName(file)}`), { ms: SECONDS * 1000 + 15_000 });
      await assertPlayed(got, source, '.ts file input', m.stderr());
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });
});

describe('a file ffmpeg must seek is read by path (--ffmpeg)', () => {
  after(() => killAllTools());

  it('an MP4 with its moov at the end (ffmpeg -f mp4, no +faststart) plays as a file input', { timeout: 60_000 }, async () => {
    const mkv = await makeClip('mkv-h264-aac', { seconds: SECONDS });
    const mp4 = path.join(await mkdtemp(path.join(os.tmpdir(), 'mkvcast-ts-')), 'moov-last.mp4');
    await ffmpeg(['-i', mkv, '-map', '0', '-c', 'copy', '-f', 'mp4', mp4]);
    const boxes = topBoxes(await readFile(mp4));
    assert.ok(boxes.indexOf('mdat') >= 0 && boxes.indexOf('mdat') < boxes.indexOf('moov'), `moov should follow mdat: ${boxes.join(' ')}`);
    const source = await probe(mp4);
    let master: RunningMaster | undefined;
    try {
      const file = await clipCopy(mp4, 'moov-last.mp4');
      master = await startMaster([file, '--edges', '1', '--ffmpeg', ffmpegPath]);
      const m = master;
      await waitForStream(m, streamName(file), 15_000).catch((err: Error) => {
        throw new Error(`${err.message}\nstderr:\n${m.stderr()}`);
      });
      const got = await collect(m.url(`/live/${streamName(file)}`), { ms: SECONDS * 1000 + 15_000 });
      await assertPlayed(got, source, 'MP4 moov at the end', m.stderr());
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });
});
