// Real-media helpers for integration tests: clips made by a real ffmpeg, checked by a real
// ffprobe and a full decode, and a plain HTTP client that records a live response to a file.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import ffmpegInstaller from '@ffmpeg-installer/ffmpeg';
import ffprobeInstaller from '@ffprobe-installer/ffprobe';
import { UNKNOWN_SIZE, readId, readSize } from '@mkvcast/shared';

export const ffmpegPath: string = ffmpegInstaller.path;
export const ffprobePath: string = ffprobeInstaller.path;

export type ClipKind =
  | 'webm-vp8-opus'
  | 'mkv-h264-aac'
  | 'audio-only'
  | 'piped-mkv'
  | 'webm-late-start'
  | 'webm-vp9-opus'
  | 'mkv-hevc-aac';

/** The kinds the media test makes and checks (the browser tests check VP9 and HEVC themselves). */
export const clipKinds: readonly ClipKind[] = [
  'webm-vp8-opus',
  'mkv-h264-aac',
  'audio-only',
  'piped-mkv',
  'webm-late-start',
];

export interface ClipOptions {
  /** Clip length in seconds (default 8, at most 600). */
  seconds?: number;
  /** Cache directory (default `<tmpdir>/mkvcast-test-media`). */
  dir?: string;
}

// One per user: a directory another user (root) made may not be writable by this one.
export const defaultMediaDir = path.join(os.tmpdir(), `mkvcast-test-media-${process.getuid?.() ?? 'user'}`);

const TOOL_TIMEOUT_MS = 120_000;
const MAX_BUFFER = 256 * 1024 * 1024;

// testsrc2 moves every frame, so VP8/H.264 spend their bitrate evenly; ~450 + 48 kbit/s
// gives the ~500 kbit/s stream the bench is specified for.
const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25'];
const AUDIO_IN = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
const VP8 = [
  '-c:v', 'libvpx', '-b:v', '450k', '-minrate', '450k', '-maxrate', '450k', '-bufsize', '900k',
  '-g', '25', '-deadline', 'realtime', '-cpu-used', '8',
];
const OPUS = ['-c:a', 'libopus', '-b:a', '48k', '-ac', '2'];
const H264 = [
  '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-b:v', '450k', '-pix_fmt', 'yuv420p',
];
const AAC = ['-c:a', 'aac', '-b:a', '64k', '-ac', '2'];
const VP9 = ['-c:v', 'libvpx-vp9', '-b:v', '300k', '-g', '25', '-deadline', 'realtime', '-cpu-used', '8'];
/** HEVC: what Debian's Chromium cannot decode. */
const HEVC = ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error', '-g', '25'];

interface Recipe {
  ext: string;
  /** Arguments after `-t seconds`, ending with the output format (the file name follows). */
  args: string[];
  /** Write through ffmpeg's stdout (a pipe: no seeking back, unknown sizes). */
  piped: boolean;
}

function recipe(kind: ClipKind): Recipe {
  switch (kind) {
    case 'webm-vp8-opus':
      return { ext: 'webm', piped: false, args: ['-map', '0:v', '-map', '1:a', ...VP8, ...OPUS, '-f', 'webm'] };
    case 'mkv-h264-aac':
      return { ext: 'mkv', piped: false, args: ['-map', '0:v', '-map', '1:a', ...H264, '-g', '25', ...AAC, '-f', 'matroska'] };
    case 'audio-only':
      return { ext: 'webm', piped: false, args: ['-map', '1:a', ...OPUS, '-f', 'webm'] };
    case 'piped-mkv':
      // -g 50: a GOP (2 s) spans several of the ~32 KiB / ~260 ms clusters ffmpeg cuts on a pipe.
      return { ext: 'mkv', piped: true, args: ['-map', '0:v', '-map', '1:a', ...H264, '-g', '50', ...AAC, '-f', 'matroska'] };
    case 'webm-vp9-opus':
      return { ext: 'webm', piped: false, args: ['-map', '0:v', '-map', '1:a', ...VP9, ...OPUS, '-f', 'webm'] };
    case 'mkv-hevc-aac':
      return { ext: 'mkv', piped: false, args: ['-map', '0:v', '-map', '1:a', ...HEVC, ...AAC, '-f', 'matroska'] };
    case 'webm-late-start':
      return {
        ext: 'webm',
        piped: false,
        args: ['-map', '0:v', '-map', '1:a', ...VP8, ...OPUS, '-output_ts_offset', '20541', '-f', 'webm'],
      };
  }
}

const pending = new Map<string, Promise<string>>();

/**
 * Path of a cached test clip, generated on first use. Test files run in parallel processes,
 * so a clip is written under a unique temporary name and then linked into place: the name
 * only ever points at a whole file.
 */
export function makeClip(kind: ClipKind, options: ClipOptions = {}): Promise<string> {
  const seconds = options.seconds ?? 8;
  if (!(seconds > 0 && seconds <= 600)) throw new RangeError(`seconds out of range: ${seconds}`);
  const r = recipe(kind);
  const dir = options.dir ?? defaultMediaDir;
  // The recipe is part of the name so that changing the arguments regenerates the clip.
  const tag = createHash('sha1').update(JSON.stringify([r, ffmpegPath])).digest('hex').slice(0, 8);
  const file = path.join(dir, `${kind}-${seconds}s-${tag}.${r.ext}`);
  let p = pending.get(file);
  if (p === undefined) {
    p = ensureClip(file, seconds, r);
    pending.set(file, p);
    p.catch(() => pending.delete(file));
  }
  return p;
}

async function ensureClip(file: string, seconds: number, r: Recipe): Promise<string> {
  const existing = await stat(file).catch(() => null);
  if (existing !== null && existing.size > 0) return file;
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  const args = ['-nostdin', '-v', 'error', '-y', ...VIDEO_IN, ...AUDIO_IN, '-t', String(seconds), ...r.args];
  try {
    if (r.piped) await runPiped([...args, '-'], tmp);
    else await run(ffmpegPath, [...args, tmp]);
    // link() fails if the name exists: the first finished writer wins, and a clip never
    // changes under a reader (libvpx output differs slightly from run to run).
    await link(tmp, file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return file;
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool; resolves even on a non-zero exit (callers decide), rejects if it cannot start. */
function runTool(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: MAX_BUFFER, timeout: TOOL_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') {
        reject(new Error(`${path.basename(cmd)} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err === null ? 0 : (err.code as number), stdout, stderr });
    });
  });
}

async function run(cmd: string, args: string[]): Promise<string> {
  const res = await runTool(cmd, args);
  if (res.code !== 0) throw new Error(`${path.basename(cmd)} exited ${res.code}: ${res.stderr}`);
  return res.stdout;
}

async function runPiped(args: string[], outFile: string): Promise<void> {
  const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 65536) stderr += s;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS);
  try {
    await pipeline(child.stdout, createWriteStream(outFile));
    const code = await exited;
    if (code !== 0) throw new Error(`ffmpeg exited ${code}: ${stderr}`);
  } finally {
    clearTimeout(timer);
  }
}

export interface ProbeStream {
  index: number;
  codec_type: string;
  codec_name: string;
}

export interface ProbeResult {
  /** Errors from ffprobe (if it failed) and from a full decode; '' means decoded cleanly. */
  errors: string;
  videoPackets: number;
  audioPackets: number;
  videoKeyframes: number;
  /** Whether the first video packet in file order is a keyframe; null without video. */
  firstVideoKey: boolean | null;
  /** pts of the first packet in file order, in seconds; null without packets. */
  firstPtsS: number | null;
  /** Largest packet pts, in seconds; null without packets. */
  lastPtsS: number | null;
  streams: ProbeStream[];
}

interface FfprobeJson {
  packets?: { stream_index: number; flags?: string; pts?: number; pts_time?: string }[];
  streams?: { index: number; codec_type?: string; codec_name?: string }[];
}

/** Packets and streams by ffprobe, plus a full decode by ffmpeg (`-f null`). */
export async function probe(file: string): Promise<ProbeResult> {
  const [pr, decode] = await Promise.all([
    runTool(ffprobePath, [
      '-v', 'error', '-show_entries', 'packet=stream_index,flags,pts,pts_time', '-show_streams', '-of', 'json', file,
    ]),
    // Frames keep the demuxer's 1/1000 time base: this ffmpeg's Matroska H.264 with B-frames
    // has irregular ms timestamps that collide when rounded to 1/25 and would read as errors.
    runTool(ffmpegPath, [
      '-nostdin', '-v', 'error', '-i', file, '-vsync', 'passthrough', '-enc_time_base', '-1', '-f', 'null', '-',
    ]),
  ]);
  let errors = decode.stderr;
  if (decode.code !== 0 && errors === '') errors = `ffmpeg exited ${decode.code}\n`;
  if (pr.code !== 0) errors = `ffprobe exited ${pr.code}: ${pr.stderr}` + errors;
  let json: FfprobeJson = {};
  try {
    json = JSON.parse(pr.stdout) as FfprobeJson;
  } catch (err) {
    errors = `ffprobe output is not JSON: ${(err as Error).message}\n` + errors;
  }
  return summarize(json, errors);
}

function summarize(json: FfprobeJson, errors: string): ProbeResult {
  const streams: ProbeStream[] = (json.streams ?? []).map((s) => ({
    index: s.index,
    codec_type: s.codec_type ?? 'unknown',
    codec_name: s.codec_name ?? 'unknown',
  }));
  const typeOf = new Map(streams.map((s) => [s.index, s.codec_type]));
  const result: ProbeResult = {
    errors, videoPackets: 0, audioPackets: 0, videoKeyframes: 0,
    firstVideoKey: null, firstPtsS: null, lastPtsS: null, streams,
  };
  for (const p of json.packets ?? []) {
    const key = (p.flags ?? '').includes('K');
    const t = p.pts_time === undefined ? NaN : Number(p.pts_time);
    if (Number.isFinite(t)) {
      result.firstPtsS ??= t;
      result.lastPtsS = result.lastPtsS === null ? t : Math.max(result.lastPtsS, t);
    }
    const type = typeOf.get(p.stream_index);
    if (type === 'video') {
      result.videoPackets++;
      if (key) result.videoKeyframes++;
      result.firstVideoKey ??= key;
    } else if (type === 'audio') {
      result.audioPackets++;
    }
  }
  return result;
}

/** framemd5 of every packet, stream-copied (no decode): the lines without '#' comments. */
export async function frameMd5(file: string): Promise<string[]> {
  const out = await run(ffmpegPath, ['-nostdin', '-v', 'error', '-i', file, '-map', '0', '-c', 'copy', '-f', 'framemd5', '-']);
  return out.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
}

export interface CollectOptions {
  /** Stop after this many body bytes (the file holds exactly this many). */
  bytes?: number;
  /** Stop this long after the request started (default 30 000 when `bytes` is not set). */
  ms?: number;
  /** Where to write the body (default: a new temporary file). */
  file?: string;
  headers?: Record<string, string>;
  method?: string;
  /** Called once, when the first body byte arrives. */
  onFirstByte?: () => void;
}

export interface CollectResult {
  status: number;
  headers: IncomingHttpHeaders;
  file: string;
  bytes: number;
  /** Milliseconds from the request start to the first body byte; null if none came. */
  firstByteMs: number | null;
  /** How the body ended. */
  end: 'closed' | 'bytes' | 'ms' | 'error';
  error?: string;
}

/**
 * `collect`, and a promise that resolves once the player has its first body byte: a test waits
 * on it to know the player is connected and fed. It rejects if the body ends without a byte.
 */
export function collectWatching(url: string, options: CollectOptions = {}): { firstByte: Promise<void>; result: Promise<CollectResult> } {
  let fed!: () => void;
  const fedOnce = new Promise<void>((resolve) => (fed = resolve));
  const result = collect(url, { ...options, onFirstByte: fed });
  const firstByte = Promise.race([
    fedOnce,
    result.then((r) => Promise.reject(new Error(`the player got no byte: status ${r.status}, end ${r.end}${r.error ? ` (${r.error})` : ''}`))),
  ]);
  return { firstByte, result };
}

/**
 * A copy of a capture that a player ended itself, at an arbitrary byte (CollectResult.end 'ms'
 * or 'bytes'), without the part of the top-level element it cut through: what it got whole.
 * Walks the EBML header and the Segment's children; stops at the first of unknown size.
 */
export async function wholeElementsCopy(file: string): Promise<string> {
  const buf = await readFile(file);
  let pos = 0;
  let whole = 0;
  for (let level = 0; pos < buf.length; ) {
    const id = readId(buf, pos);
    const size = typeof id === 'number' ? id : readSize(buf, pos + id.length);
    if (typeof id === 'number' || typeof size === 'number') break;
    const dataAt = pos + id.length + size.length;
    // The Segment (unknown size, level 0) holds the rest: step into it.
    if (level === 0 && size.value === UNKNOWN_SIZE && id.value === 0x18538067) {
      pos = whole = dataAt;
      level = 1;
      continue;
    }
    if (size.value === UNKNOWN_SIZE) {
      whole = buf.length;
      break;
    }
    if (dataAt + size.value > buf.length) break;
    pos = whole = dataAt + size.value;
  }
  const copy = `${file}.whole`;
  await writeFile(copy, buf.subarray(0, whole));
  return copy;
}

/**
 * GET a URL on a fresh connection and write the body to a file until the server ends it or a
 * limit is hit. A live stream never ends, so some limit always applies.
 */
export async function collect(url: string, options: CollectOptions = {}): Promise<CollectResult> {
  const file = options.file ?? path.join(await mkdtemp(path.join(os.tmpdir(), 'mkvcast-collect-')), 'body');
  const limitBytes = options.bytes ?? Infinity;
  const limitMs = options.ms ?? (options.bytes === undefined ? 30_000 : Infinity);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const out = createWriteStream(file);
    let done = false;
    let bytes = 0;
    let firstByteMs: number | null = null;
    let timer: NodeJS.Timeout | undefined;
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    const finish = (res: http.IncomingMessage, end: CollectResult['end'], error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      out.end(() => {
        const result: CollectResult = {
          status: res.statusCode ?? 0, headers: res.headers, file, bytes, firstByteMs, end,
        };
        if (error !== undefined) result.error = error;
        resolve(result);
      });
    };
    req.once('error', (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      out.destroy();
      reject(err);
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      if (Number.isFinite(limitMs)) timer = setTimeout(() => finish(res, 'ms'), Math.max(0, limitMs - (performance.now() - started)));
      res.on('data', (chunk: Buffer) => {
        if (done) return;
        if (firstByteMs === null) {
          firstByteMs = performance.now() - started;
          options.onFirstByte?.();
        }
        const take = Math.min(chunk.length, limitBytes - bytes);
        bytes += take;
        // Backpressure: the file may be slower than loopback.
        if (!out.write(take === chunk.length ? chunk : chunk.subarray(0, take))) {
          res.pause();
          out.once('drain', () => res.resume());
        }
        if (bytes >= limitBytes) finish(res, 'bytes');
      });
      res.once('end', () => finish(res, 'closed'));
      res.once('error', (err) => finish(res, 'error', err.message));
      res.once('close', () => finish(res, 'closed'));
    });
    if (Number.isFinite(limitMs)) {
      // Until the headers arrive, the limit fails the request (no response to report).
      timer = setTimeout(() => req.destroy(new Error(`no response within ${limitMs} ms`)), limitMs);
    }
    req.end();
  });
}
