// One crowd may come from several load generator processes (one process's connects and reads
// can be what players wait on): their reports, added up as if one process had sent them all.
import type { LoadReport, MarkerPlayer } from './loadgen.js';

/** Nearest-rank percentile of an ascending array; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** What the fan-out measurement reads from the load generators, all processes together. */
export interface MergedLoad {
  processes: number;
  ok200: number;
  status: Record<string, number>;
  errors: number;
  errorCodes: Record<string, number>;
  closedEarly: number;
  noBody: number;
  burstBytes: number;
  windowBytes: number;
  keptUp: number | null;
  /** Players still receiving at the end, window bytes within 10 % of their process's median. */
  keptUpLive: number;
  laggards: LoadReport['laggards'];
  /** Sampled players' markers (the latency bench). */
  markers: MarkerPlayer[];
  ttfbMs: { p50: number | null; p99: number | null; max: number | null };
  /** TCP connect (the kernel's handshake) of the players that connected. */
  connectMs: { p50: number | null; p99: number | null; max: number | null };
  /** The longest of the processes' windows, s. */
  windowS: number;
  gbps: number;
  /** CPU seconds of all the processes in the measuring window. */
  cpuWindowS: number;
  /** The busiest process's share of a core in the measuring window. */
  windowShare: number;
  /** The busiest process's share of a core from its first connect to its last player's first byte. */
  crowdShare: number;
  timedOut: boolean;
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
}

export function mergeReports(reports: readonly LoadReport[]): MergedLoad {
  const sum = (f: (r: LoadReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
  const status: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  for (const r of reports) {
    addCounts(status, r.status);
    addCounts(errorCodes, r.errorCodes);
  }
  const ttfb = reports.flatMap((r) => r.ttfbSamplesMs).sort((a, b) => a - b);
  const connect = reports.flatMap((r) => r.connectSamplesMs).sort((a, b) => a - b);
  const spread = (sorted: number[]): MergedLoad['ttfbMs'] => ({
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? null,
  });
  const windowS = Math.max(...reports.map((r) => r.windowS));
  const windowBytes = sum((r) => r.windowBytes);
  const cpuS = (c: { userS: number; systemS: number }): number => c.userS + c.systemS;
  return {
    processes: reports.length,
    ok200: sum((r) => r.ok200),
    status,
    errors: sum((r) => r.errors),
    errorCodes,
    closedEarly: sum((r) => r.closedEarly),
    noBody: sum((r) => r.noBody),
    burstBytes: sum((r) => r.burstBytes),
    windowBytes,
    keptUp: reports.some((r) => r.keptUp === null) ? null : sum((r) => r.keptUp!),
    keptUpLive: sum((r) => r.keptUpLive),
    laggards: reports.flatMap((r) => r.laggards).slice(0, 10),
    markers: reports.flatMap((r) => r.markers),
    ttfbMs: spread(ttfb),
    connectMs: spread(connect),
    windowS,
    gbps: windowS > 0 ? Math.round(((windowBytes * 8) / windowS / 1e9) * 1e4) / 1e4 : 0,
    cpuWindowS: sum((r) => cpuS(r.cpuWindow)),
    windowShare: Math.max(...reports.map((r) => (r.windowS > 0 ? cpuS(r.cpuWindow) / r.windowS : 0))),
    crowdShare: Math.max(...reports.map((r) => (r.crowdCpu.wallS > 0 ? r.crowdCpu.cpuS / r.crowdCpu.wallS : 0))),
    timedOut: reports.some((r) => r.timedOut),
  };
}
