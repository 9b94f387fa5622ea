import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InputError, MkvcastError } from '@mkvcast/shared';
import { FfmpegUrlSource, ffmpegInput, readsThroughFfmpeg, redact } from '../src/inputs/ffmpegUrl.js';

/** A stand-in for ffmpeg: a shell script, so that exits, output and stalls are exact. */
async function fakeFfmpeg(body: string): Promise<{ bin: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-fake-ffmpeg-'));
  const bin = path.join(dir, 'ffmpeg');
  await writeFile(bin, `#!/bin/sh\n${body}\n`);
  await chmod(bin, 0o755);
  return { bin, done: () => rm(dir, { recursive: true, force: true }) };
}

/** Reads a session to its end: the bytes, or the error that ended it. */
async function drain(stream: Readable): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

test('which URLs go through ffmpeg, and which listen', () => {
  for (const url of ['rtsp://cam/stream', 'rtmp://host/live/x', 'srt://h:9000', 'udp://0.0.0.0:5000', 'https://cdn/x/index.m3u8?token=1']) {
    assert.equal(readsThroughFfmpeg(url), true, url);
  }
  for (const url of ['http://origin/live/x', 'https://cdn/x.webm', 'tcp://0.0.0.0:1234', 'movie.mkv', '-']) {
    assert.equal(readsThroughFfmpeg(url), false, url);
  }
  assert.deepEqual(ffmpegInput('rtmp://0.0.0.0:1935/live/obs'), { url: 'rtmp://0.0.0.0:1935/live/obs', listen: true, args: ['-listen', '1'] });
  assert.deepEqual(ffmpegInput('rtmp://127.0.0.1:1935/live/obs?listen=1'), { url: 'rtmp://127.0.0.1:1935/live/obs', listen: true, args: ['-listen', '1'] });
  assert.equal(ffmpegInput('rtmp://server/live/x').listen, false);
  assert.equal(ffmpegInput('srt://0.0.0.0:9000?mode=listener').listen, true);
  assert.equal(ffmpegInput('srt://server:9000').listen, false);
  assert.deepEqual(ffmpegInput('rtsp://cam/stream').args, ['-rtsp_transport', 'tcp']);
  assert.equal(redact('rtsp://admin:secret@cam/stream'), 'rtsp://admin:***@cam/stream');
  assert.equal(redact('srt://h:9000?mode=caller&passphrase=longsecret1'), 'srt://h:9000?mode=caller&passphrase=***');
});

test('without an ffmpeg, a URL only ffmpeg reads is refused with a clear error', () => {
  assert.throws(() => new FfmpegUrlSource('rtsp://cam/stream', null), (err: unknown) => err instanceof InputError && /--ffmpeg/.test(err.message));
});

test('an ffmpeg that fails: its last stderr line ends the session, and restarts back off, doubling up to the cap', { timeout: 20_000 }, async () => {
  // 100 KB of noise, then the line that says why: only a bounded tail is kept.
  const fake = await fakeFfmpeg(`head -c 100000 /dev/zero | tr '\\0' x >&2; echo >&2; echo "Connection refused" >&2; exit 1`);
  const lines: string[] = [];
  const source = new FfmpegUrlSource('rtsp://127.0.0.1:9/none', fake.bin, { minBackoffMs: 10, maxBackoffMs: 40, log: (l) => lines.push(l) });
  try {
    const signal = AbortSignal.timeout(15_000);
    for (let run = 1; run <= 5; run++) {
      const session = await source.next(signal);
      assert.ok(session, `run ${run}`);
      assert.match(session.label, new RegExp(`\\(run ${run}\\)$`));
      const { bytes, error } = await drain(session.stream);
      assert.equal(bytes, 0);
      assert.ok(error instanceof MkvcastError && error.code === 'MKV_ERR_INPUT', `run ${run}: ${String(error)}`);
      assert.match(error.message, /exited with 1: Connection refused$/);
      assert.ok(error.message.length < 500, 'the error carries the last line, not all of stderr');
    }
    const waits = lines.flatMap((l) => /again in (\d+) ms/.exec(l)?.[1] ?? []).map(Number);
    assert.deepEqual(waits, [10, 20, 40, 40]);
  } finally {
    source.close();
    await fake.done();
  }
});

test('a pulled URL that goes quiet is stopped as stalled; a run that delivered media restarts at once', { timeout: 20_000 }, async () => {
  const fake = await fakeFfmpeg('printf media; exec sleep 30');
  const lines: string[] = [];
  const source = new FfmpegUrlSource('rtsp://127.0.0.1:9/quiet', fake.bin, { idleTimeoutMs: 150, minBackoffMs: 5_000, log: (l) => lines.push(l) });
  try {
    const signal = AbortSignal.timeout(15_000);
    const first = await source.next(signal);
    const { bytes, error } = await drain(first!.stream);
    assert.equal(bytes, 5);
    assert.ok(error instanceof MkvcastError && error.code === 'MKV_ERR_INPUT_STALLED', String(error));
    // Media came, so no backoff (5 s here) before the next run.
    const started = Date.now();
    const second = await source.next(signal);
    assert.ok(Date.now() - started < 2_000, 'restarted without waiting the backoff');
    assert.equal(lines.some((l) => /delivered nothing/.test(l)), false);
    second!.stream.destroy();
  } finally {
    source.close();
    await fake.done();
  }
});

test('a listener waits for its encoder as long as it takes: no stall before the first byte', { timeout: 20_000 }, async () => {
  const fake = await fakeFfmpeg('exec sleep 30');
  const source = new FfmpegUrlSource('rtmp://127.0.0.1:1935/live/x?listen=1', fake.bin, { idleTimeoutMs: 50 });
  try {
    const session = await source.next(AbortSignal.timeout(5_000));
    const ended = drain(session!.stream);
    // Ten idle periods with nothing from the encoder: still waiting.
    const outcome = await Promise.race([ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('waiting'), 500))]);
    assert.equal(outcome, 'waiting');
    source.close();
    const { error } = await ended;
    assert.equal(error, undefined, 'closing ends the session cleanly');
  } finally {
    source.close();
    await fake.done();
  }
});

test('an ffmpeg that cannot be run fails its session with the reason', { timeout: 10_000 }, async () => {
  const source = new FfmpegUrlSource('rtsp://127.0.0.1:9/x', '/nonexistent/ffmpeg', { minBackoffMs: 10 });
  try {
    const session = await source.next(AbortSignal.timeout(5_000));
    const { error } = await drain(session!.stream);
    // Spawned directly, or through setpriv, which says it could not execute it.
    assert.ok(error instanceof InputError && /cannot run \/nonexistent\/ffmpeg|failed to execute \/nonexistent\/ffmpeg/.test(error.message), String(error));
  } finally {
    source.close();
  }
});

test('one ffmpeg at a time: the next run starts only once the last one has exited', { timeout: 10_000 }, async () => {
  const fake = await fakeFfmpeg('echo $$ >> "$(dirname "$0")/pids"; printf media; exec sleep 30');
  const pidsFile = path.join(path.dirname(fake.bin), 'pids');
  const source = new FfmpegUrlSource('rtmp://0.0.0.0:1935/live/x', fake.bin, {});
  try {
    const signal = AbortSignal.timeout(8_000);
    const earlier: number[] = [];
    for (let run = 1; run <= 3; run++) {
      const session = await source.next(signal);
      // Killed and reaped: a zombie would still answer signal 0.
      for (const pid of earlier) assert.throws(() => process.kill(pid, 0), /ESRCH/, `run ${run}: ffmpeg ${pid} of an earlier run still exists`);
      // The first chunk proves this run's process started (its pid is written); leaving the loop ends the session.
      for await (const chunk of session!.stream) {
        assert.equal(String(chunk), 'media');
        const pids = readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
        assert.equal(pids.length, run, 'one process per run');
        earlier.push(pids.at(-1)!);
        // No await between the end of this session and the next run: only the source may wait for the exit.
        break;
      }
    }
  } finally {
    source.close();
    await fake.done();
  }
});
