// mkvcast under test: the real CLI (master, source and edges) serving the looped clip.
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { descendants } from './procstats.js';
import { isRunning, spawnTracked, stopChild, tailOutput, watchStray, killStrays } from './children.js';
import { freePort, get, poll } from './http.js';
import type { PublisherSpec, ServerUnderTest } from './server.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_MASTER = `${REPO_ROOT}packages/master/bin/master.js`;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const STATS_TIMEOUT_MS = 5_000;
/** Slots past the player count, for /stats requests and stragglers. */
const SPARE_SLOTS_PER_EDGE = 16;

export interface MkvcastOptions {
  master: string;
  /** The looped clip it serves; null: a publisher PUTs the stream to /live/live. */
  clip: string | null;
  /** Looped copies of the clip, served as live1 … liveN (the players' URL with 1 … N appended); 1 or undefined: one, live. */
  streams?: number;
  publisher?: PublisherSpec;
  /** --max-delay, ms; undefined: the server's default. */
  maxDelay?: number;
  edges: number;
  /** Players each edge takes; null: enough for `players` and a few spare. */
  clientsPerEdge: number | null;
  players: number;
  verbose: boolean;
}

export interface LatencyMs {
  p50: number;
  p99: number;
  max?: number;
}

export function clientsPerEdgeFor(o: Pick<MkvcastOptions, 'clientsPerEdge' | 'players' | 'edges'>): number {
  return o.clientsPerEdge ?? Math.ceil(o.players / o.edges) + SPARE_SLOTS_PER_EDGE;
}

/** Starts the master and resolves once its public port answers GET /stats. */
export async function startMkvcast(o: MkvcastOptions): Promise<ServerUnderTest> {
  const port = await freePort();
  const streams = o.streams ?? 1;
  const clip = o.clip;
  const input =
    clip === null ? [] : streams > 1 ? [...streamNames(streams).map((name) => `${name}=${clip}`), '--loop'] : [clip, '--loop', '--name', 'live'];
  const args = [
    o.master, ...input, '--edges', String(o.edges), '--port', String(port), '--host', '127.0.0.1',
    '--clients-per-edge', String(clientsPerEdgeFor(o)),
    ...(o.maxDelay === undefined ? [] : ['--max-delay', String(o.maxDelay)]),
  ];
  const child = spawnTracked(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = tailOutput(child, 4000, o.verbose ? (line) => process.stderr.write(`[mkvcast] ${line}\n`) : undefined);
  let startError: string | null = null;
  child.once('error', (err) => (startError = err.message));
  const pid = child.pid ?? -1;
  const base = `http://127.0.0.1:${port}`;
  let publisher: ChildProcess | null = null;
  const failure = (): string | null =>
    startError ??
    (isRunning(child) ? null : `master exited (${child.exitCode ?? child.signalCode})`) ??
    (publisher === null || isRunning(publisher) ? null : `the publisher exited (${publisher.exitCode ?? publisher.signalCode})`);

  const server: ServerUnderTest = {
    name: 'mkvcast',
    url: `${base}/live/live`,
    serverPids: () => (pid > 0 ? descendants(pid) : []),
    publisherPids: () => (publisher?.pid !== undefined && isRunning(publisher) ? [publisher.pid] : []),
    windowEnd: async () => {
      const latencyMs = await readLatency(base);
      return latencyMs === null ? {} : { latencyMs };
    },
    failure,
    tail,
    stop: async () => {
      if (publisher !== null) await stopChild(publisher, 2000);
      // Edges and workers are the master's to stop; any it leaves behind are killed after.
      for (const p of server.serverPids()) watchStray(p);
      const clean = await stopChild(child, STOP_GRACE_MS);
      if (!clean) process.stderr.write('bench: master ignored SIGTERM; killed it\n');
      const left = killStrays();
      if (left.length > 0) process.stderr.write(`bench: killed leftover mkvcast processes: ${left.join(', ')}\n`);
    },
  };
  try {
    const up = await poll(async () => ((await get(`${base}/stats`, 2000))?.status === 200 ? true : null), {
      timeoutMs: START_TIMEOUT_MS,
      everyMs: 100,
      abort: failure,
    });
    if (up === null) throw new Error(`mkvcast did not answer on ${base} within ${START_TIMEOUT_MS / 1000} s`);
    if (streams > 1) for (const name of streamNames(streams)) await waitLive(`${base}/live/${name}`, failure);
    if (o.publisher !== undefined) {
      publisher = startPublisher(o.publisher, { url: `${base}/live/live`, password: null });
      await waitLive(`${base}/live/live`, failure);
    }
  } catch (err) {
    await server.stop();
    throw new Error(`${(err as Error).message}\n--- mkvcast output ---\n${tail()}`);
  }
  return server;
}

/** The stream names of a --streams run: live1 … liveN. */
function streamNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `live${i + 1}`);
}

/** Starts the bench's publisher process; its stdout lines go to spec.onLine. */
export function startPublisher(spec: PublisherSpec, target: { url: string; password: string | null }): ChildProcess {
  const child = spawnTracked(process.execPath, spec.args(target), { stdio: ['ignore', 'pipe', 'pipe'] });
  createInterface({ input: child.stdout! }).on('line', spec.onLine);
  // Its errors matter only when it dies (that fails the run): print them, or all with --verbose.
  createInterface({ input: child.stderr! }).on('line', (line) => process.stderr.write(`[publisher] ${line}\n`));
  return child;
}

/** Resolves once GET `url` answers 200 (the published stream is live), or throws. */
export async function waitLive(url: string, failure: () => string | null): Promise<void> {
  const ok = await poll(() => streamStatus(url).then((s) => (s === 200 ? true : null)), { timeoutMs: START_TIMEOUT_MS, everyMs: 200, abort: failure });
  if (ok === null) throw new Error(`${url} did not go live within ${START_TIMEOUT_MS / 1000} s`);
}

/** The status of a live stream's GET, without waiting for its (endless) body. */
function streamStatus(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      resolve(res.statusCode ?? null);
      req.destroy();
    });
    req.once('error', () => resolve(null));
    req.setTimeout(2000, () => {
      req.destroy();
      resolve(null);
    });
  });
}

/**
 * `latencyMs` from GET /stats: source → player socket, as the server measures it. Absent in
 * servers that do not measure it yet; null then, and the bench leaves it out.
 */
async function readLatency(base: string): Promise<LatencyMs | null> {
  const res = await get(`${base}/stats`, STATS_TIMEOUT_MS);
  if (res === null || res.status !== 200) return null;
  let stats: unknown;
  try {
    stats = JSON.parse(res.body);
  } catch {
    return null;
  }
  return asLatency((stats as { latencyMs?: unknown } | null)?.latencyMs);
}

function asLatency(value: unknown): LatencyMs | null {
  if (typeof value !== 'object' || value === null) return null;
  const { p50, p99, max } = value as Record<string, unknown>;
  if (typeof p50 !== 'number' || typeof p99 !== 'number') return null;
  return typeof max === 'number' ? { p50, p99, max } : { p50, p99 };
}
