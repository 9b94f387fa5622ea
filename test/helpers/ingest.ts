// Helpers for the live-ingest tests: real publishers (ffmpeg, curl, a node chunked upload),
// clips that differ from one another, packet timestamps, and frame runs.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { link, mkdir, stat, unlink } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultMediaDir, ffmpegPath, ffprobePath } from './media.js';
import { request, waitForStream } from './live.js';
import type { RunningMaster } from './server.js';

export function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH, or null: the tests use what this machine has. */
export function onPath(name: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir !== '' && executable(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

export const CURL = onPath('curl');

/** A child process of a test (ffmpeg, curl, icecast) with its output kept for reports. */
export interface Tool {
  proc: ChildProcess;
  /** The last 8 KiB of its stdout and stderr. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether it is still running. */
  running: () => boolean;
}

/** Every tool started and not yet reaped, so that after() hooks can kill what a failed test left. */
const tools = new Set<Tool>();

export function startTool(cmd: string, args: string[]): Tool {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-8192);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('error', (err) => {
      output += `\n(spawn failed: ${err.message})`;
      resolve({ code: -1, signal: null });
    });
    proc.once('close', (code, signal) => resolve({ code, signal }));
  });
  const tool: Tool = {
    proc,
    output: () => output,
    exited,
    running: () => proc.exitCode === null && proc.signalCode === null,
  };
  tools.add(tool);
  void exited.then(() => tools.delete(tool));
  return tool;
}

/** SIGKILLs a tool (if it still runs) and waits for its exit. Never throws. */
export async function killTool(tool: Tool | undefined): Promise<void> {
  if (!tool) return;
  if (tool.running()) tool.proc.kill('SIGKILL');
  await tool.exited;
}

/** Kills every tool still running (for after() hooks). */
export async function killAllTools(): Promise<void> {
  await Promise.all([...tools].map((t) => killTool(t)));
}

/** Resolves with a tool's exit, or rejects after `timeoutMs` with its output. */
export async function toolExit(tool: Tool, what: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} still running after ${timeoutMs} ms; output:\n${tool.output()}`)), timeoutMs);
  });
  try {
    return await Promise.race([tool.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * ffmpeg publishing `clip` in real time (`-re`), stream-copied, as an Icecast source does:
 * `icecast://source:<key>@host:port/live/<name>` (an HTTP PUT).
 */
export function ffmpegIcecastPublisher(clip: string, port: number, name: string, key: string): Tool {
  return startTool(ffmpegPath, [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-i', clip,
    '-map', '0', '-c', 'copy', '-content_type', 'video/webm', '-f', 'webm',
    `icecast://source:${key}@127.0.0.1:${port}/live/${name}`,
  ]);
}

export interface UploadResult {
  status: number;
  body: string;
  /** The connection ended before an answer (the server closed it, or it was reset). */
  error?: string;
  /** Milliseconds from the start of the upload to its answer (or its end). */
  ms: number;
}

/** An upload the test writes to by hand (chunked), and its answer. */
export interface OpenUpload {
  /** Resolves once the bytes are written, or buffered below the high-water mark. */
  write: (bytes: Buffer) => Promise<void>;
  end: () => void;
  /** The answer, or how the connection ended. */
  answer: Promise<UploadResult>;
  /** Whether the answer (or the end of the connection) came. */
  settled: () => boolean;
}

export function openUpload(url: string, timeoutMs: number, method = 'PUT', headers: Record<string, string> = {}): OpenUpload {
  const t0 = performance.now();
  const req = http.request(url, { method, agent: false, headers: { 'Transfer-Encoding': 'chunked', ...headers } });
  let settled = false;
  const answer = new Promise<UploadResult>((resolve) => {
    const settle = (r: Omit<UploadResult, 'ms'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => {
      req.destroy();
      settle({ status: 0, body: '', error: `no answer and no close within ${timeoutMs} ms` });
    }, timeoutMs);
    req.on('error', (err) => settle({ status: 0, body: '', error: err.message }));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => settle({ status: res.statusCode ?? 0, body }));
      res.on('error', (err) => settle({ status: res.statusCode ?? 0, body, error: err.message }));
    });
  });
  return {
    // Backpressure: wait for 'drain' (or the end of the request) when write() says so.
    write: (bytes) =>
      req.write(bytes) || settled ? Promise.resolve() : new Promise<void>((resolve) => {
        req.once('drain', resolve);
        void answer.then(() => resolve());
      }),
    end: () => void req.end(),
    answer,
    settled: () => settled,
  };
}

/**
 * A node publisher: `method` to `url` with `Transfer-Encoding: chunked`, the data written in
 * pieces spread over `seconds` (a live encoder's pace), then the end. Resolves with the answer.
 */
export function chunkedUpload(
  url: string,
  data: Buffer,
  options: {
    seconds: number;
    method?: string;
    headers?: Record<string, string>;
    stepMs?: number;
    timeoutMs?: number;
    /** Once everything is sent, keep the upload open (the stream live) until this settles. */
    holdEnd?: Promise<unknown>;
  },
): Promise<UploadResult> {
  const upload = openUpload(url, options.timeoutMs ?? 60_000, options.method ?? 'POST', { 'Content-Type': 'video/webm', ...options.headers });
  void (async () => {
    const stepMs = options.stepMs ?? 100;
    const steps = Math.max(1, Math.round((options.seconds * 1000) / stepMs));
    const per = Math.ceil(data.length / steps);
    const t0 = performance.now();
    for (let i = 0; i * per < data.length && !upload.settled(); i++) {
      await upload.write(data.subarray(i * per, (i + 1) * per));
      const due = t0 + (i + 1) * stepMs - performance.now();
      if (due > 0) await sleep(due);
    }
    await options.holdEnd?.catch(() => {});
    if (!upload.settled()) upload.end();
  })();
  return upload.answer;
}

/** Sends `data` and then nothing (a stalled publisher): resolves with how the server ended it. */
export function stalledUpload(url: string, data: Buffer, timeoutMs: number): Promise<UploadResult> {
  const upload = openUpload(url, timeoutMs);
  void upload.write(data);
  return upload.answer;
}

/**
 * A clip unlike every other index: testsrc2 turned by a hue of 36°·i and a sine of 300 + 70·i Hz,
 * VP8 + Opus WebM 320x240 at 25 fps with a keyframe every second. Same codecs and parameters
 * for every index (so a publisher may switch clips on a live stream), different frames.
 */
export function makeDistinctClip(index: number, seconds: number): Promise<string> {
  const args = [
    '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25,hue=h=${index * 36}`,
    '-f', 'lavfi', '-i', `sine=frequency=${300 + index * 70}:sample_rate=48000`,
    '-t', String(seconds), '-map', '0:v', '-map', '1:a',
    '-c:v', 'libvpx', '-b:v', '300k', '-g', '25', '-deadline', 'realtime', '-cpu-used', '8',
    '-c:a', 'libopus', '-b:a', '48k', '-ac', '2', '-f', 'webm',
  ];
  const tag = createHash('sha1').update(JSON.stringify([args, ffmpegPath])).digest('hex').slice(0, 8);
  return cachedFile(`distinct-${index}-${seconds}s-${tag}.webm`, (tmp) => runOk(ffmpegPath, ['-nostdin', '-v', 'error', '-y', ...args, tmp]));
}

/**
 * An MPEG-TS copy of a Matroska H.264 + AAC clip, as a recording device would send it: the
 * audio stream-copied (AAC in ADTS) or re-encoded to MPEG-1 Layer II (`mp2`).
 */
export function makeTsCopy(mkvClip: string, audio: 'aac' | 'mp2' = 'aac'): Promise<string> {
  const name = `${path.basename(mkvClip, path.extname(mkvClip))}-${audio}.ts`;
  const audioArgs = audio === 'aac' ? ['-c:a', 'copy'] : ['-c:a', 'mp2', '-b:a', '128k'];
  return cachedFile(name, (tmp) =>
    runOk(ffmpegPath, ['-nostdin', '-v', 'error', '-y', '-i', mkvClip, '-map', '0', '-c:v', 'copy', ...audioArgs, '-f', 'mpegts', tmp]),
  );
}

const pending = new Map<string, Promise<string>>();

/** Writes a file once under the media cache (a unique temporary name, then linked into place). */
function cachedFile(name: string, make: (tmp: string) => Promise<void>): Promise<string> {
  const file = path.join(defaultMediaDir, name);
  let p = pending.get(file);
  if (p === undefined) {
    p = (async () => {
      const existing = await stat(file).catch(() => null);
      if (existing !== null && existing.size > 0) return file;
      await mkdir(defaultMediaDir, { recursive: true });
      const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
      try {
        await make(tmp);
        await link(tmp, file).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
      } finally {
        await unlink(tmp).catch(() => {});
      }
      return file;
    })();
    pending.set(file, p);
    p.catch(() => pending.delete(file));
  }
  return p;
}

function runOk(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

/** Packet pts (seconds) per stream in file order, by ffprobe. */
export async function packetPts(file: string): Promise<Map<number, { type: string; pts: number[] }>> {
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      ffprobePath,
      ['-v', 'error', '-show_entries', 'packet=stream_index,pts_time:stream=index,codec_type', '-of', 'json', file],
      { timeout: 120_000, maxBuffer: 256 * 1024 * 1024 },
      (err, out, stderr) => (err ? reject(new Error(`ffprobe failed: ${err.message}\n${stderr}`)) : resolve(out)),
    );
  });
  const json = JSON.parse(stdout) as {
    packets?: { stream_index: number; pts_time?: string }[];
    streams?: { index: number; codec_type?: string }[];
  };
  const result = new Map<number, { type: string; pts: number[] }>();
  for (const s of json.streams ?? []) result.set(s.index, { type: s.codec_type ?? 'unknown', pts: [] });
  for (const p of json.packets ?? []) {
    const t = Number(p.pts_time);
    if (Number.isFinite(t)) result.get(p.stream_index)?.pts.push(t);
  }
  return result;
}

/**
 * Per stream, no packet's pts is more than `slackS` (about a frame) before the largest pts
 * seen so far in that stream: timestamps never jump back.
 */
export function assertMonotonicPts(streams: Map<number, { type: string; pts: number[] }>, slackS: Record<string, number>, what: string): void {
  for (const [index, { type, pts }] of streams) {
    let max = -Infinity;
    for (let i = 0; i < pts.length; i++) {
      const t = pts[i]!;
      const slack = slackS[type] ?? 0.05;
      if (t < max - slack - 1e-6) {
        assert.fail(`${what}: stream ${index} (${type}) goes back in time at packet #${i}: pts ${t} s after ${max} s (allowed ${slack} s)`);
      }
      max = Math.max(max, t);
    }
  }
}

/** framemd5 line → [stream, "duration,size,hash"] (timestamps left out: ffmpeg rebases them). */
function frameKey(line: string): [string, string] {
  const [stream, , , duration, size, hash] = line.split(',').map((f) => f.trim());
  return [stream!, `${duration},${size},${hash}`];
}

export function framesByStream(lines: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of lines) {
    const [stream, key] = frameKey(line);
    const list = m.get(stream) ?? [];
    list.push(key);
    m.set(stream, list);
  }
  return m;
}

/** Where `run` occurs contiguously in `all`, or -1. */
export function indexOfRun(all: string[], run: string[], from = 0): number {
  if (run.length === 0) return from;
  outer: for (let start = from; start + run.length <= all.length; start++) {
    for (let i = 0; i < run.length; i++) if (all[start + i] !== run[i]) continue outer;
    return start;
  }
  return -1;
}

/**
 * Every stream of a recording is one contiguous run of the same stream's frames in the
 * original (same duration, size and checksum, no gap, no duplicate, nothing foreign), and
 * `minFrames` of them at least per stream. Returns where each run starts.
 */
export function assertFramesRun(got: string[], want: string[], what: string, minFrames = 1): Map<string, number> {
  const g = framesByStream(got);
  const w = framesByStream(want);
  assert.deepEqual([...g.keys()].sort(), [...w.keys()].sort(), `${what}: streams`);
  const starts = new Map<string, number>();
  for (const [stream, frames] of g) {
    const all = w.get(stream)!;
    assert.ok(frames.length >= minFrames, `${what}: stream ${stream} has ${frames.length} frames, fewer than ${minFrames}`);
    // A first frame that is not in the original at all is cross-talk, not a lost frame: say so.
    const start = all.indexOf(frames[0]!);
    assert.ok(start >= 0, `${what}: stream ${stream}: the first received frame (${frames[0]}) is not in the original`);
    const at = indexOfRun(all, frames, start);
    if (at < 0) {
      const firstBad = frames.findIndex((f, i) => all[start + i] !== f);
      assert.fail(
        `${what}: stream ${stream}: the ${frames.length} received frames are not a contiguous run of the original's ${all.length}; ` +
          `first difference at received #${firstBad}: ${frames[firstBad]} vs ${all[start + firstBad] ?? '(past the end)'}` +
          `${all.includes(frames[firstBad]!) ? '' : ' (a frame the original does not have)'}`,
      );
    }
    starts.set(stream, at);
  }
  return starts;
}

/**
 * Offsets of the top-level Clusters of a Matroska file with sized elements (as ffmpeg writes
 * files): walks EBML header → Segment → its children (RFC 8794 §4, RFC 9559 §5.1).
 */
export function clusterOffsets(buf: Buffer): { start: number; end: number }[] {
  const vint = (pos: number, keepMarker: boolean): { value: number; length: number } => {
    const first = buf[pos]!;
    let length = 1;
    while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++;
    let value = keepMarker ? first : first & (0xff >> length);
    for (let i = 1; i < length; i++) value = value * 256 + buf[pos + i]!;
    return { value, length };
  };
  const element = (pos: number): { id: number; body: number; size: number } => {
    const id = vint(pos, true);
    const size = vint(pos + id.length, false);
    return { id: id.value, body: pos + id.length + size.length, size: size.value };
  };
  const ebml = element(0);
  assert.equal(ebml.id, 0x1a45dfa3, 'EBML header');
  const segment = element(ebml.body + ebml.size);
  assert.equal(segment.id, 0x18538067, 'Segment');
  const clusters: { start: number; end: number }[] = [];
  for (let pos = segment.body; pos < buf.length; ) {
    const child = element(pos);
    const end = child.body + child.size;
    if (child.id === 0x1f43b675) clusters.push({ start: pos, end });
    pos = end;
  }
  return clusters;
}

/** The `GET /live/` document. */
export interface LiveList {
  streams: { name: string; url: string; docType: string; tracks: { number: number; type: string; codec: string }[]; players: number }[];
}

/** `GET /live/` parsed; fails on another status or a body that is not the documented JSON. */
export async function liveList(base: string): Promise<LiveList> {
  const reply = await request(`${base}/live/`);
  assert.equal(reply.status, 200, `GET /live/ answered ${reply.status}: ${reply.body.toString()}`);
  const list = JSON.parse(reply.body.toString('utf8')) as LiveList;
  assert.ok(Array.isArray(list.streams), `GET /live/ has no streams array: ${reply.body.toString()}`);
  return list;
}

/**
 * Waits until `/live/<name>` plays on every edge while `upload` is still going; fails at once,
 * with the publisher's answer and the master's stderr, if the upload ends first.
 */
export async function waitForPublished(master: RunningMaster, name: string, upload: Promise<UploadResult>, timeoutMs = 10_000): Promise<void> {
  let done = false;
  const ended = upload.then((r) => {
    if (!done) throw new Error(`the upload to /live/${name} ended before its stream played: ${JSON.stringify(r)}\nstderr:\n${master.stderr()}`);
  });
  try {
    await Promise.race([
      waitForStream(master, name, timeoutMs).catch((err: Error) => {
        throw new Error(`${err.message}\nstderr:\n${master.stderr()}`);
      }),
      ended,
    ]);
  } finally {
    done = true;
  }
}

export type RawFraming = 'length' | 'chunked' | 'close';

/**
 * An upload on a bare TCP connection, so that the test decides what goes in which write:
 * `oneWrite` sends the request head and the whole body in a single write (what
 * `http.request(...).end(body)` does); otherwise the head goes alone and the body follows in
 * 16 KiB pieces every `stepMs`. `close` framing (HTTP/1.0, no length) half-closes after the
 * body. Resolves with everything the server sent back until it closed (or the timeout).
 */
export function rawUpload(
  port: number,
  path: string,
  data: Buffer,
  options: { framing: RawFraming; oneWrite: boolean; stepMs?: number; timeoutMs?: number; headers?: string[] },
): Promise<{ answer: string; status: number; closedByServer: boolean }> {
  const { framing } = options;
  const head =
    `PUT ${path} HTTP/${framing === 'close' ? '1.0' : '1.1'}\r\nHost: 127.0.0.1\r\nContent-Type: video/webm\r\n` +
    (framing === 'length' ? `Content-Length: ${data.length}\r\n` : '') +
    (framing === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : '') +
    (options.headers ?? []).map((h) => `${h}\r\n`).join('') +
    '\r\n';
  const body = (piece: Buffer): Buffer =>
    framing === 'chunked' ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
  const last = framing === 'chunked' ? Buffer.from('0\r\n\r\n') : Buffer.alloc(0);
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const done = (): void => {
      clearTimeout(timer);
      const answer = Buffer.concat(chunks).toString('latin1');
      resolve({ answer, status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0), closedByServer });
    };
    const timer = setTimeout(() => {
      socket.destroy();
      done();
    }, options.timeoutMs ?? 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('end', () => {
      closedByServer = true;
      socket.end();
    });
    socket.on('error', () => undefined); // a reset is reported as an answer that is missing
    socket.once('close', done);
    const finish = (): void => {
      if (socket.destroyed) return;
      if (last.length > 0) socket.write(last);
      if (framing === 'close') socket.end();
    };
    if (options.oneWrite) {
      socket.write(Buffer.concat([Buffer.from(head), body(data), last]));
      if (framing === 'close') socket.end();
      return;
    }
    socket.write(head);
    const step = 16 * 1024;
    let at = 0;
    const tick = (): void => {
      if (socket.destroyed) return;
      if (at >= data.length) return finish();
      socket.write(body(data.subarray(at, at + step)));
      at += step;
      setTimeout(tick, options.stepMs ?? 20);
    };
    setTimeout(tick, options.stepMs ?? 20);
  });
}
