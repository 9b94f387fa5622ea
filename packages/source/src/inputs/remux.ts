import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { CorruptStreamError, InputError } from '@mkvcast/shared';

const EBML_MAGIC = 0x1a45dfa3;
const SNIFF_BYTES = 192;

/** What a stream that is not Matroska looks like, from its first bytes. */
export function sniffContainer(head: Buffer): string {
  if (head[0] === 0x47 && (head.length < 189 || head[188] === 0x47)) return 'MPEG-TS';
  if (head.subarray(0, 3).toString('latin1') === 'FLV') return 'FLV';
  if (head.subarray(4, 8).toString('latin1') === 'ftyp') return 'MP4';
  return 'unknown data';
}

/**
 * The Matroska bytes of an input. Matroska/WebM passes through untouched;
 * another container (MPEG-TS from a recorder, FLV, MP4) is remuxed without
 * re-encoding by a spawned `ffmpeg -c copy -f matroska` over pipes, when an
 * ffmpeg was given; otherwise it is refused with a clear error.
 */
export async function* matroskaBytes(stream: Readable, ffmpeg: string | null): AsyncGenerator<Buffer> {
  const input = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
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
  yield* remux(head, input, ffmpeg, kind);
}

async function* remux(head: Buffer, input: AsyncIterator<Buffer>, ffmpeg: string, kind: string): AsyncGenerator<Buffer> {
  const child = spawn(ffmpeg, ['-v', 'error', '-i', 'pipe:0', '-map', '0:v?', '-map', '0:a?', '-c', 'copy', '-f', 'matroska', 'pipe:1'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new InputError(`cannot run ${ffmpeg} to remux ${kind}: ${err.message}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.stdin.on('error', () => undefined);
  await spawned;
  void feed(head, input, child.stdin);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new InputError(`remuxing ${kind} failed: ${stderr.trim().split('\n').pop() ?? `ffmpeg exited with ${code}`}`);
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
