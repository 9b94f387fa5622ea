// mkvcast under test: the real CLI (master, source and edges) serving the looped clip.
import { fileURLToPath } from 'node:url';
import { descendants } from './procstats.js';
import { isRunning, spawnTracked, stopChild, tailOutput, watchStray, killStrays } from './children.js';
import { freePort, get, poll } from './http.js';
import type { ServerUnderTest } from './server.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_MASTER = `${REPO_ROOT}packages/master/bin/master.js`;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const STATS_TIMEOUT_MS = 5_000;
/** Slots past the player count, for /stats requests and stragglers. */
const SPARE_SLOTS_PER_EDGE = 16;

export interface MkvcastOptions {
  master: string;
  clip: string;
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
  const args = [
    o.master, o.clip, '--loop', '--edges', String(o.edges), '--port', String(port), '--host', '127.0.0.1',
    '--name', 'live', '--clients-per-edge', String(clientsPerEdgeFor(o)),
  ];
  const child = spawnTracked(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = tailOutput(child, 4000, o.verbose ? (line) => process.stderr.write(`[mkvcast] ${line}\n`) : undefined);
  let startError: string | null = null;
  child.once('error', (err) => (startError = err.message));
  const pid = child.pid ?? -1;
  const base = `http://127.0.0.1:${port}`;
  const failure = (): string | null =>
    startError ?? (isRunning(child) ? null : `master exited (${child.exitCode ?? child.signalCode})`);

  const server: ServerUnderTest = {
    name: 'mkvcast',
    url: `${base}/live/live`,
    serverPids: () => (pid > 0 ? descendants(pid) : []),
    publisherPids: () => [],
    windowEnd: async () => {
      const latencyMs = await readLatency(base);
      return latencyMs === null ? {} : { latencyMs };
    },
    failure,
    tail,
    stop: async () => {
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
  } catch (err) {
    await server.stop();
    throw new Error(`${(err as Error).message}\n--- mkvcast output ---\n${tail()}`);
  }
  return server;
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
