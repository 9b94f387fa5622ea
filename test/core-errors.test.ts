// Bad inputs: each one ends the master with a clear line on stderr (no stack trace) and a
// non-zero exit (1 for a corrupt stream, 2 for a usage error); a stream that breaks while
// players watch it is ended cleanly for them, and the edges survive. An MP4 is a bad input
// only when the master has no ffmpeg to remux it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { collect, ffmpegPath, makeClip, probe } from './helpers/media.js';
import { runMaster, startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, exitWithin, problemLines, stopQuietly, streamName, truncatedCopy, waitForStream } from './helpers/live.js';

// --no-ffmpeg: what an input in another container gets must not depend on whether this
// machine has an ffmpeg on its PATH (the master would remux it). The remuxing test sets PATH.
const LISTEN = ['--port', '0', '--host', '127.0.0.1', '--edges', '2', '--no-ffmpeg'];

/** The error lines of a failed run: at least one, each short, and none a stack frame. */
function assertClearError(stderr: string, pattern: RegExp): void {
  assertNoStack(stderr);
  const problems = problemLines(stderr);
  assert.ok(problems.length >= 1 && problems.length <= 2, `expected one error line, got:\n${stderr}`);
  assert.match(problems.join('\n'), pattern, `stderr:\n${stderr}`);
  for (const line of problems) assert.ok(line.length < 300, `error line too long: ${line}`);
  assert.doesNotMatch(stderr, /\b(died|failed to start|restarting)\b/, `a child process crashed:\n${stderr}`);
}

/**
 * An H.264 MP4 of 3 s (keyframe every second), made once per directory. +faststart puts its
 * index (moov) first: ffmpeg reads the input from a pipe and cannot seek to an index at the end.
 */
const mp4Clips = new Map<string, Promise<string>>();
function mp4Clip(dir: string): Promise<string> {
  const file = path.join(dir, 'clip.mp4');
  if (!mp4Clips.has(file)) {
    mp4Clips.set(file, promisify(execFile)(ffmpegPath, [
      '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '3',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-movflags', '+faststart', file,
    ]).then(() => file));
  }
  return mp4Clips.get(file)!;
}

describe('inputs that are not a playable stream', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-bad-'));
  });

  it('random bytes: exit 1, "not a Matroska/WebM stream"', { timeout: 30_000 }, async () => {
    const file = path.join(dir, 'garbage.mkv');
    await writeFile(file, randomBytes(256 * 1024));
    const { code, stderr } = await runMaster([file, ...LISTEN]);
    assert.equal(code, 1, stderr);
    assertClearError(stderr, /garbage\.mkv.*not a Matroska\/WebM stream/);
  });

  it('a text file: exit 1, "not a Matroska/WebM stream"', { timeout: 30_000 }, async () => {
    const file = path.join(dir, 'notes.txt');
    await writeFile(file, 'These are not the frames you are looking for.\n'.repeat(100));
    const { code, stderr } = await runMaster([file, ...LISTEN]);
    assert.equal(code, 1, stderr);
    assertClearError(stderr, /notes\.txt.*not a Matroska\/WebM stream/);
  });

  it('an MP4 made by ffmpeg, with --no-ffmpeg: exit 1, "not a Matroska/WebM stream", says it is MP4', { timeout: 30_000 }, async () => {
    const file = await mp4Clip(dir);
    const { code, stderr } = await runMaster([file, ...LISTEN]);
    assert.equal(code, 1, stderr);
    assertClearError(stderr, /clip\.mp4.*not a Matroska\/WebM stream.*MP4.*--ffmpeg/);
  });

  it('the same MP4 with an ffmpeg on PATH: remuxed and served as Matroska to its end, exit 0', { timeout: 30_000 }, async () => {
    const file = await mp4Clip(dir);
    // A PATH that holds only the npm ffmpeg: the master finds it there, whatever this machine has.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-path-'));
    await symlink(ffmpegPath, path.join(bin, 'ffmpeg'));
    let master: RunningMaster | undefined;
    try {
      master = await startMaster([file, '--edges', '1'], { env: { ...process.env, PATH: bin } });
      await waitForStream(master, 'clip');
      const got = await collect(master.url('/live/clip'), { ms: 20_000 });
      const { code } = await exitWithin(master, 10_000);
      assert.equal(got.status, 200, master.stderr());
      assert.equal(got.headers['content-type'], 'video/x-matroska');
      assert.equal(got.end, 'closed');
      const p = await probe(got.file);
      assert.equal(p.errors, '', 'decode errors');
      assert.equal(p.firstVideoKey, true);
      assert.ok(p.videoPackets >= 25, `${p.videoPackets} video frames`);
      assert.equal(code, 0, master.stderr());
      assertNoStack(master.stderr());
    } finally {
      await stopQuietly(master);
    }
  });

  it('an empty file: exit 1 with a clear line', { timeout: 30_000 }, async () => {
    const file = path.join(dir, 'empty.webm');
    await writeFile(file, '');
    const { code, stderr } = await runMaster([file, ...LISTEN]);
    assert.equal(code, 1, stderr);
    assertClearError(stderr, /empty\.webm/);
  });

  it('a file cut inside its header (first 1 KB): exit 1 with a clear line', { timeout: 30_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus');
    const cut = path.join(dir, 'header-only.webm');
    await writeFile(cut, (await readFile(clip)).subarray(0, 1024));
    const { code, stderr } = await runMaster([cut, ...LISTEN]);
    assert.equal(code, 1, stderr);
    assertClearError(stderr, /header-only\.webm/);
  });

  it('a missing file: exit 2, "no such file"', { timeout: 30_000 }, async () => {
    const { code, stderr } = await runMaster([path.join(dir, 'nope.webm'), ...LISTEN]);
    assert.equal(code, 2, stderr);
    assertClearError(stderr, /nope\.webm.*no such file/);
  });

  it('a directory: exit 2, "is a directory"', { timeout: 30_000 }, async () => {
    const { code, stderr } = await runMaster([dir, ...LISTEN]);
    assert.equal(code, 2, stderr);
    assertClearError(stderr, /directory/);
  });

  it('an unreadable file: exit 2 with a clear line', { timeout: 30_000 }, async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('running as root: file permissions do not stop root from reading');
      return;
    }
    const file = path.join(dir, 'secret.webm');
    await writeFile(file, 'x', { mode: 0o000 });
    const { code, stderr } = await runMaster([file, ...LISTEN]);
    assert.equal(code, 2, stderr);
    assertClearError(stderr, /secret\.webm/);
  });
});

/**
 * A stream that goes bad while a player watches it: the player gets the whole Clusters that
 * came before (decodable), its connection ends, the master says why and exits 1.
 */
async function breakingStream(file: string, breakPattern: RegExp): Promise<void> {
  let master: RunningMaster | undefined;
  try {
    master = await startMaster([file, '--edges', '2']);
    await waitForStream(master, streamName(file));
    const t0 = performance.now();
    const got = await collect(master.url(`/live/${streamName(file)}`), { ms: 20_000 });
    const endedAfter = performance.now() - t0;
    const { code } = await exitWithin(master, 10_000);
    const stderr = master.stderr();
    assert.equal(got.status, 200, stderr);
    assert.equal(got.end, 'closed', 'the player\'s connection should end');
    assert.ok(got.bytes > 50_000, `the player got only ${got.bytes} bytes before the break`);
    assert.ok(endedAfter < 10_000, `the player was closed ${Math.round(endedAfter)} ms after connecting`);
    const p = await probe(got.file);
    assert.equal(p.errors, '', 'what the player got before the break should decode cleanly (whole Clusters only)');
    assert.equal(p.firstVideoKey, true);
    assert.equal(code, 1, stderr);
    assertClearError(stderr, breakPattern);
  } finally {
    await stopQuietly(master);
  }
}

describe('a stream that breaks while a player watches', () => {
  it('a clip truncated to 60 %: the player gets what came before and is closed; exit 1', { timeout: 40_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    const file = await truncatedCopy(clip, 0.6, 'truncated.webm');
    await breakingStream(file, /truncated\.webm.*(ended inside|truncat)/i);
  });

  it('a piped clip (unknown-size Segment) truncated to 60 %: same', { timeout: 40_000 }, async () => {
    const clip = await makeClip('piped-mkv', { seconds: 8 });
    const file = await truncatedCopy(clip, 0.6, 'truncated-piped.mkv');
    await breakingStream(file, /truncated-piped\.mkv.*(ended inside|truncat)/i);
  });

  it('a clip whose second half is random bytes: the player is closed at the break; exit 1', { timeout: 40_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    const data = await readFile(clip);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-bad-'));
    const file = path.join(dir, 'corrupt-half.webm');
    await writeFile(file, Buffer.concat([data.subarray(0, Math.floor(data.length / 2)), randomBytes(200_000)]));
    await breakingStream(file, /corrupt-half\.webm/);
  });
});
