import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import { StderrTail, sniffContainer } from '../src/inputs/remux.js';
import { needsAudioEncode, tsStreamTypes } from '../src/inputs/tsProbe.js';

const ffmpeg = ffmpegInstaller.path;

/** A 1 s MPEG-TS from the real ffmpeg: H.264 and the given audio codec. */
async function makeTs(audio: 'aac' | 'mp2'): Promise<string> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'mkvcast-remux-')), `clip-${audio}.ts`);
  await promisify(execFile)(ffmpeg, [
    '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '1', '-map', '0:v', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', audio, '-f', 'mpegts', file,
  ], { timeout: 60_000 });
  return file;
}

test('the PMT of an MPEG-TS with AAC asks for the audio to be re-encoded; with MP2 it does not', async () => {
  const aac = await readFile(await makeTs('aac'));
  const mp2 = await readFile(await makeTs('mp2'));
  assert.equal(sniffContainer(aac), 'MPEG-TS');
  const aacTypes = tsStreamTypes(aac);
  assert.deepEqual(aacTypes?.streamTypes.sort(), [0x0f, 0x1b], 'AAC in ADTS and H.264');
  assert.equal(needsAudioEncode(aacTypes), true);
  assert.equal(needsAudioEncode(tsStreamTypes(mp2)), false);
  // Before the PMT is complete: no answer yet; bytes that are not TS packets: none.
  assert.equal(tsStreamTypes(aac.subarray(0, 188)), null);
  assert.equal(tsStreamTypes(Buffer.alloc(188 * 4, 0x11)), null);
});

test("a failed remux reports ffmpeg's error lines, not its last line (ADTS AAC copied to Matroska on a pipe)", async () => {
  const ts = await makeTs('aac');
  const child = spawn(ffmpeg, ['-nostdin', '-v', 'error', '-i', ts, '-map', '0', '-c', 'copy', '-f', 'matroska', 'pipe:1'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const tail = new StderrTail();
  child.stderr.on('data', (chunk: Buffer) => tail.push(chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  assert.notEqual(code, 0, 'this ffmpeg copies ADTS AAC to a Matroska pipe: the test has nothing to show');
  assert.match(tail.errors(), /\[matroska\] Error parsing AAC extradata/);
  assert.doesNotMatch(tail.errors(), / @ 0x/, 'the muxer address is noise');
});

test('the stderr tail stays bounded and falls back to the last line', () => {
  const tail = new StderrTail();
  for (let i = 0; i < 10_000; i++) tail.push(Buffer.from(`frame=${i} speed=1x\n`));
  assert.equal(tail.errors(), 'frame=9999 speed=1x');
  tail.push(Buffer.from(`Invalid data found when processing input\n${'x'.repeat(5000)}\n`));
  assert.ok(tail.errors().length <= 4096, 'at most 4 KB kept');
});

test('files ffmpeg writes as AVI, MOV and MP4 with the moov at the end are known by their first bytes', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-sniff-'));
  const heads = new Map<string, Buffer>();
  for (const [format, ext] of [['avi', 'avi'], ['mov', 'mov'], ['mp4', 'mp4']] as const) {
    const file = path.join(dir, `clip.${ext}`);
    await promisify(execFile)(ffmpeg, [
      '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '1',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-f', format, file,
    ], { timeout: 60_000 });
    heads.set(format, (await readFile(file)).subarray(0, 192));
  }
  assert.equal(sniffContainer(heads.get('avi')!), 'AVI');
  assert.equal(sniffContainer(heads.get('mov')!), 'MP4', 'a MOV with ftyp qt');
  assert.equal(sniffContainer(heads.get('mp4')!), 'MP4');
  // A QuickTime file without ftyp opens with its moov or mdat atom.
  const bare = Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('mdat'), Buffer.alloc(8)]);
  assert.equal(sniffContainer(bare), 'MOV');
  assert.equal(sniffContainer(Buffer.from('hello, this is text')), 'unknown data');
});
