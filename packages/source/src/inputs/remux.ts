import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { CorruptStreamError, InputError } from '@mkvcast/shared';
import type { SessionBytes } from './session.js';
import { needsAudioEncode, tsStreamTypes } from './tsProbe.js';

const EBML_MAGIC = 0x1a45dfa3;
const SNIFF_BYTES = 192;
/** MPEG-TS: read on until the first PMT (its audio codec decides the ffmpeg arguments), at most this much. */
const TS_SNIFF_BYTES = 256 * 1024;
/** ffmpeg's stderr kept for the error of a failed remux: its last lines, bounded. */
const STDERR_LINES = 20;
const STDERR_BYTES = 4096;
/**
 * A pipe is probed for 2 s of media rather than ffmpeg's 5 s: a live publisher's
 * stream opens 3 s sooner, and 2 s still holds a keyframe's SPS at the GOPs
 * recorders use (1–2 s).
 */
const PIPE_ANALYZE = ['-analyzeduration', '2000000'];
/** AAC re-encoded from MPEG-TS (see needsAudioEncode): a rate that keeps stereo AAC transparent. */
const AAC_REENCODE = ['-c:v', 'copy', '-c:a', 'aac', '-b:a', '128k'];

/** What a stream that is not Matroska looks like, from its first bytes. */
export function sniffContainer(head: Buffer): string {
  if (head[0] === 0x47 && (head.length < 189 || head[188] === 0x47)) return 'MPEG-TS';
  if (head.subarray(0, 3).toString('latin1') === 'FLV') return 'FLV';
  const box = head.subarray(4, 8).toString('latin1');
  if (box === 'ftyp') return 'MP4';
  // QuickTime files without ftyp open with one of these atoms.
  if (box === 'moov' || box === 'mdat' || box === 'wide' || box === 'free' || box === 'skip') return 'MOV';
  if (head.subarray(0, 4).toString('latin1') === 'RIFF' && head.subarray(8, 12).toString('latin1') === 'AVI ') return 'AVI';
  return 'unknown data';
}

/**
 * The Matroska bytes of an input. Matroska/WebM passes through untouched;
 * another container (MPEG-TS from a recorder, FLV, MP4) is remuxed without
 * re-encoding video by a spawned `ffmpeg -c copy -f matroska`, when an
 * ffmpeg was given; otherwise it is refused with a clear error. A file
 * (`path` given) is handed to ffmpeg by its path: MP4/MOV with the index at
 * the end and AVI need seeking, which a pipe cannot do. AAC from MPEG-TS is
 * re-encoded to AAC (see needsAudioEncode).
 */
export async function* matroskaBytes(stream: SessionBytes, ffmpeg: string | null, path?: string): AsyncGenerator<Buffer> {
  const input = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  // Chunks may be a file's reused buffers: what is kept past the next read is a copy (Buffer.concat).
  let head = Buffer.alloc(0);
  // Matroska is known from its first 4 bytes: a live publisher's first frame must not wait for 192.
  while (head.length < SNIFF_BYTES && !(head.length >= 4 && head.readUInt32BE(0) === EBML_MAGIC)) {
    const next = await input.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  if (head.length === 0) return;
  if (head.length >= 4 && head.readUInt32BE(0) === EBML_MAGIC) {
    yield head;
    for (let next = await input.next(); !next.done; next = await input.next()) yield next.value;
    return;
  }
  const kind = sniffContainer(head);
  if (kind === 'unknown data') throw new CorruptStreamError('not a Matroska/WebM stream (no EBML header)');
  if (!ffmpeg) throw new InputError(`not a Matroska/WebM stream: it looks like ${kind}; start master with --ffmpeg to remux it`);
  let codecs = ['-c', 'copy'];
  if (kind === 'MPEG-TS') {
    let programs = tsStreamTypes(head);
    while (!programs && head.length < TS_SNIFF_BYTES) {
      const next = await input.next();
      if (next.done) break;
      head = Buffer.concat([head, next.value]);
      programs = tsStreamTypes(head);
    }
    if (needsAudioEncode(programs)) codecs = AAC_REENCODE;
  }
  if (path !== undefined) {
    // ffmpeg reads the file itself; the stream opened on it is not needed.
    stream.destroy();
    // `file:` keeps a name such as `concat:…` or `http:…` a file name for ffmpeg.
    yield* remux(null, null, ffmpeg, kind, codecs, `file:${path}`);
  } else {
    yield* remux(head, input, ffmpeg, kind, codecs, 'pipe:0');
  }
}

async function* remux(
  head: Buffer | null,
  input: AsyncIterator<Buffer> | null,
  ffmpeg: string,
  kind: string,
  codecs: string[],
  from: string,
): AsyncGenerator<Buffer> {
  const args = ['-nostdin', '-v', 'error', ...(input ? PIPE_ANALYZE : []), '-i', from, '-map', '0:v?', '-map', '0:a?', ...codecs, '-f', 'matroska', 'pipe:1'];
  const child = spawn(ffmpeg, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] }) as ChildProcessByStdio<Writable | null, Readable, Readable>;
  const stderr = new StderrTail();
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new InputError(`cannot run ${ffmpeg} to remux ${kind}: ${err.message}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.stdin?.on('error', () => undefined);
  await spawned;
  if (head && input && child.stdin) void feed(head, input, child.stdin);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new InputError(`remuxing ${kind} failed: ${stderr.errors() || `ffmpeg exited with ${code}`}`);
  } finally {
    child.kill('SIGKILL');
  }
}

/** Copies the input into ffmpeg's stdin, waiting for 'drain' when it is full. */
async function feed(head: Buffer, input: AsyncIterator<Buffer>, stdin: NodeJS.WritableStream): Promise<void> {
  const write = (chunk: Buffer): Promise<void> =>
    stdin.write(chunk) ? Promise.resolve() : new Promise((resolve) => stdin.once('drain', () => resolve()));
  try {
    await write(head);
    for (let next = await input.next(); !next.done; next = await input.next()) await write(next.value);
  } catch {
    // The input failed: ending ffmpeg's input ends the remuxed stream too.
  }
  stdin.end();
}

/**
 * The last lines of ffmpeg's stderr (at most STDERR_LINES and STDERR_BYTES):
 * its last line alone ("Error initializing output stream 0:1 --") rarely says
 * what went wrong, the lines before it do.
 */
export class StderrTail {
  #text = '';

  push(chunk: Buffer): void {
    this.#text = (this.#text + chunk.toString()).slice(-STDERR_BYTES);
  }

  /** The lines that report an error, else the last line; the muxer's address dropped. */
  errors(): string {
    const lines = this.#text
      .split('\n')
      .map((l) => l.replace(/ @ 0x[0-9a-f]+\]/, ']').trim())
      .filter((l) => l !== '')
      .slice(-STDERR_LINES);
    const errors = lines.filter((l) => /error|invalid|could not|unable|failed|no such|not supported|unknown/i.test(l));
    return (errors.length > 0 ? errors : lines.slice(-1)).join('; ');
  }
}
