// Small helpers for the integration tests against a running master: bounded waits, the
// /stats document, short HTTP exchanges (plain and raw bytes), and process checks.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, open } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MASTER_BIN, type RunningMaster } from './server.js';
import type { ProbeResult } from './media.js';

/** The parts of `GET /stats` the tests rely on (what the user documented, plus `edges`). */
export interface Stats {
  players: number;
  playersByStream: Record<string, number>;
  pids: { master: number; source: number | null; edges: (number | null)[] };
  capacity: number;
  rejected: number;
  skips: number;
  kicked: number;
  restarts?: number;
  edges?: { edgeId: number; pid: number | null; players: number; connections: number }[];
  streams?: { name: string; segments: number; bytesIn: number }[];
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a fresh connection, for responses that end (not a live stream's GET). */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; timeoutMs?: number; body?: Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    const timer = setTimeout(
      () => req.destroy(new Error(`${options.method ?? 'GET'} ${url}: no complete answer within ${options.timeoutMs ?? 5000} ms`)),
      options.timeoutMs ?? 5000,
    );
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    req.end(options.body);
  });
}

/** Writes raw bytes on a TCP connection and returns everything the server sends back until it closes. */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${timeoutMs} ms; got: ${Buffer.concat(chunks).toString('latin1').slice(0, 300)}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', (err) => {
      clearTimeout(timer);
      // A reset after the answer is still an answer.
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes);
  });
}

/** A loopback TCP port free a moment ago, for a peer (nginx) that must be told its port. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` until it returns something other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

export async function getStats(master: RunningMaster): Promise<Stats> {
  const reply = await request(master.url('/stats'));
  assert.equal(reply.status, 200, `/stats answered ${reply.status}`);
  return JSON.parse(reply.body.toString('utf8')) as Stats;
}

/**
 * Polls /stats until it has the documented shape and `ready(stats)` holds. Stats travel
 * edge → master → edge once a second each way, so a change shows within about 2 s.
 */
export function waitForStats(
  master: RunningMaster,
  what: string,
  ready: (s: Stats) => boolean = () => true,
  timeoutMs = 6000,
): Promise<Stats> {
  let last: Stats | undefined;
  return waitFor(what, async () => {
    const s = await getStats(master);
    last = s;
    return s.pids !== undefined && ready(s) ? s : undefined;
  }, timeoutMs, 200).catch((err: Error) => {
    throw new Error(`${err.message}\nlast /stats: ${JSON.stringify(last)}\nstderr:\n${master.stderr()}`);
  });
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` over `items` with at most `limit` at a time, results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** A stack trace line as V8 prints it. */
const STACK_LINE = /^\s{4}at /m;

export function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, STACK_LINE, `stderr holds a stack trace:\n${stderr}`);
}

/**
 * The lines of stderr that report problems: log lines at warn or error, and
 * any line that is not a log line (a usage error, a stack).
 */
export function problemLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !/^\{"level":"(debug|info)"/.test(l));
}

/**
 * The log lines of stderr as `<process>: <message>` (the JSON lines a master
 * writes when stderr is not a terminal), so tests match on what was said.
 */
export function logMessages(stderr: string): string[] {
  return stderr.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      const line = JSON.parse(l) as { process?: string; msg?: string };
      return typeof line.msg === 'string' ? [`${line.process ?? '?'}: ${line.msg}`] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Decode errors of a recording that the test cut off itself: the demuxer reports the cut
 * as a read error at the very end, which says nothing about the stream.
 */
export function errorsIgnoringCut(p: ProbeResult): string {
  return p.errors
    .split('\n')
    .filter((l) => l !== '' && !/\] Read error$|File ended prematurely/.test(l))
    .join('\n');
}

/** The expected Content-Type for a clip file, from its extension (how the clips are made). */
export function contentTypeOf(file: string): string {
  return file.endsWith('.webm') ? 'video/webm' : 'video/x-matroska';
}

/** The stream name the master derives from a file: its basename without extension. */
export function streamName(file: string): string {
  return path.basename(file, path.extname(file));
}

/** A private copy of a clip under a chosen name (so each test's stream name is its own). */
export async function clipCopy(file: string, name: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-core-'));
  const copy = path.join(dir, name);
  await copyFile(file, copy);
  return copy;
}

/** The first `fraction` of a file, written to a new temporary file. */
export async function truncatedCopy(file: string, fraction: number, name: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-core-'));
  const out = path.join(dir, name);
  const src = await open(file, 'r');
  try {
    const size = (await src.stat()).size;
    const buf = Buffer.alloc(Math.floor(size * fraction));
    await src.read(buf, 0, buf.length, 0);
    const dst = await open(out, 'w');
    await dst.write(buf);
    await dst.close();
  } finally {
    await src.close();
  }
  return out;
}

/**
 * Runs the master CLI with stdout captured too (runMaster drops it; `--help` prints there).
 * `detached` puts it in its own process group, as a shell does for a job.
 */
export function runCli(
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [MASTER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Resolves with the exit of a running master, or rejects after `timeoutMs`. */
export async function exitWithin(
  master: RunningMaster,
  timeoutMs: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`master still running ${timeoutMs} ms later; stderr:\n${master.stderr()}`)), timeoutMs);
  });
  try {
    return await Promise.race([master.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Stops a master for cleanup: SIGTERM, then SIGKILL if it lingers. Never throws. */
export async function stopQuietly(master: RunningMaster | undefined): Promise<void> {
  if (!master) return;
  const { proc } = master;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const killer = setTimeout(() => proc.kill('SIGKILL'), 8000);
  await master.exited;
  clearTimeout(killer);
}

/** framemd5 line: stream_index, dts, pts, duration, size, hash. */
function fields(line: string): string[] {
  return line.split(',').map((f) => f.trim());
}

/** Every frame line equal, pts and dts included; the message names the first difference. */
export function assertSameFrames(got: string[], want: string[], what: string): void {
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) {
      assert.fail(
        `${what}: frame lines differ first at #${i} of ${want.length} expected (${got.length} received):\n` +
          `  received: ${got[i] ?? '(none)'}\n  expected: ${want[i] ?? '(none)'}`,
      );
    }
  }
}

/**
 * A player that joined late holds, for each stream, exactly the last frames of the file
 * (same duration, size and hash, no gap, no duplicate). Timestamps are left out: ffmpeg
 * rebases framemd5 output on the recording's own first timestamp.
 */
export function assertFramesSuffix(got: string[], want: string[], what: string): void {
  const byStream = (lines: string[]): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    for (const line of lines) {
      const [stream, , , duration, size, hash] = fields(line);
      const list = m.get(stream!) ?? [];
      list.push(`${duration},${size},${hash}`);
      m.set(stream!, list);
    }
    return m;
  };
  const g = byStream(got);
  const w = byStream(want);
  assert.deepEqual([...g.keys()].sort(), [...w.keys()].sort(), `${what}: streams`);
  for (const [stream, frames] of g) {
    const all = w.get(stream)!;
    assert.ok(frames.length > 0 && frames.length <= all.length, `${what}: stream ${stream} has ${frames.length} of ${all.length} frames`);
    const offset = all.length - frames.length;
    for (let i = 0; i < frames.length; i++) {
      if (frames[i] !== all[offset + i]) {
        assert.fail(
          `${what}: stream ${stream} is not the file's last ${frames.length} frames; first difference at received #${i}:\n` +
            `  received: ${frames[i]}\n  expected: ${all[offset + i]}`,
        );
      }
    }
  }
}

/** Codecs as "type:name", in stream order. */
export function codecsOf(p: ProbeResult): string[] {
  return p.streams.map((s) => `${s.codec_type}:${s.codec_name}`);
}

/**
 * Writes `data` to a writable (a master's stdin) at the rate a live muxer would: the whole
 * of it spread over `seconds`, in steps of `stepMs`; then ends it.
 */
export async function feedInRealTime(
  out: NodeJS.WritableStream,
  data: Buffer,
  seconds: number,
  stepMs = 100,
  signal?: AbortSignal,
): Promise<void> {
  const steps = Math.max(1, Math.round((seconds * 1000) / stepMs));
  const per = Math.ceil(data.length / steps);
  const t0 = performance.now();
  for (let i = 0; i < steps && !signal?.aborted; i++) {
    const chunk = data.subarray(i * per, (i + 1) * per);
    if (chunk.length > 0 && !out.write(chunk)) {
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    const due = t0 + (i + 1) * stepMs - performance.now();
    if (due > 0) await sleep(due);
  }
  out.end();
}

/**
 * Waits until the master serves `/live/<name>` on every edge: a burst of concurrent HEAD
 * requests (which the master spreads over its edges) all answer 200. A file's stream appears
 * only once the source has ingested its header and first Cluster, and reaches each edge on its
 * own, which may be after the listening line; see the regression test "a GET right after the
 * listening line". The short pause lets the edges report the HEAD connections closed, so
 * that they do not skew where the next players are sent.
 */
export async function waitForStream(master: Pick<RunningMaster, 'url'>, name: string, timeoutMs = 5000): Promise<true> {
  const url = master.url(`/live/${name}`);
  await waitFor(
    `/live/${name} to answer HEAD with 200 on every edge`,
    async () => {
      const replies = await Promise.all(Array.from({ length: 8 }, () => request(url, { method: 'HEAD' })));
      return replies.every((r) => r.status === 200);
    },
    timeoutMs,
    10,
  );
  await sleep(100);
  return true;
}

/** Processes whose command line contains `marker` (children get their config, names included, in argv). */
export async function pidsWithArg(marker: string): Promise<number[]> {
  const { readdir, readFile: read } = await import('node:fs/promises');
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await read(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) pids.push(Number(entry));
  }
  return pids;
}
