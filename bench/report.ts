// The fan-out bench's printed output: the table of runs, mkvcast/Icecast ratios, the summary line.
import type { FanoutResult } from './fanout.js';
import type { ServerName } from './server.js';

export interface Ratios {
  players: number;
  keptUp: number | null;
  deliveredGbps: number | null;
  cpuSecondsPerGbit: number | null;
  peakRss: number | null;
  perPlayerRss: number | null;
  ttfbP50: number | null;
  ttfbP99: number | null;
  loadgenCpu: number | null;
}

export interface Summary {
  type: 'summary';
  /** The peer compared against, or null for an mkvcast-only run. */
  vs: 'icecast' | null;
  /** Why the peer was not measured, when it was asked for and could not be. */
  vsSkipped?: string;
  players: number[];
  runs: number;
  failed: { server: ServerName; players: number; error: string }[];
  /** mkvcast / Icecast for each player count both were measured at. */
  ratios: Ratios[];
  /** Runs whose load generator used ≥ 90 % of a core: their figures may be the generator's limit. */
  loadgenSaturated: { server: ServerName; players: number; cpuPct: number }[];
  /** Runs during which other processes used more than a quarter of a core: their figures are disturbed. */
  disturbed: { server: ServerName; players: number; otherCpuPct: number }[];
}

/** Share of one core (%) other processes may use during a window before the run is flagged. */
export const DISTURBED_OTHER_CPU_PCT = 25;

export const fmt = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : String(x));

function latencyCell(r: FanoutResult): string {
  const l = r.latencyMs as { p50?: unknown; p99?: unknown } | undefined;
  return l === undefined ? '-' : `${fmt(l.p50 as number)} / ${fmt(l.p99 as number)}`;
}

/** The busiest load generator's CPU in the window, and during the crowd; the process count. */
function loadgenCell(r: FanoutResult): string {
  return `${r.loadgenCpuPct} / ${r.loadgenCrowdCpuPct}${r.loadgens > 1 ? ` (x${r.loadgens})` : ''}`;
}

export function grid(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function runTable(rows: FanoutResult[]): string {
  const head = [
    'server', 'players', 'kept up', 'not served', 'Gbit/s', 'srv CPU %', 'CPU s/Gbit', 'peak RSS MB', 'B/player',
    'TTFB p50/p99/max ms', 'connect p99 ms', 'listen drops', 'SYN rtx', 'loadgen CPU %', 'pub CPU %', 'other CPU %', 'latency p50/p99 ms',
  ];
  const body = rows.map((r) => [
    r.server, String(r.players), fmt(r.keptUp), String(r.players - r.ok200), String(r.deliveredGbps), String(r.serverCpuPct),
    fmt(r.serverCpuSecondsPerGbit), String(r.peakRssMB), String(r.perPlayerRssBytes),
    `${fmt(r.ttfbMs.p50)} / ${fmt(r.ttfbMs.p99)} / ${fmt(r.ttfbMs.max)}`, fmt(r.connectMs.p99), fmt(r.tcp?.listenDrops), fmt(r.tcp?.synRetrans),
    `${loadgenCell(r)}${r.loadgenSaturated ? ' (!)' : ''}`,
    fmt(r.publisherCpuPct), String(r.otherCpuPct), latencyCell(r),
  ]);
  return grid(head, body);
}

/** What the columns mean, printed under the table. */
export const LEGEND = [
  'kept up: players that received >= 90 % of the stream rate over the window; not served: players without a 200',
  '(refused, 503, or no answer within the window). CPU: all server processes over the window (Icecast: icecast2',
  'alone; its ffmpeg publisher is "pub"). B/player: (mean RSS in the window - idle RSS) / N. TTFB: connect to first',
  'body byte, over the players that got one. other CPU: the rest of the machine (softirq apart): disturbance.',
  'connect: the TCP handshake alone. listen drops / SYN rtx: the kernel\'s ListenDrops and TCPSynRetrans over the',
  'run (the whole network namespace): handshakes the listening socket turned away, and the SYNs retried for them',
  '(after 1 s, then 3 s). loadgen CPU: the busiest load generator, over the window / from its first connect to its',
  'last player\'s first byte.',
].join('\n');

const ratio = (a: number | null, b: number | null): number | null =>
  a === null || b === null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;

export function ratiosOf(rows: FanoutResult[]): Ratios[] {
  const out: Ratios[] = [];
  for (const m of rows.filter((r) => r.server === 'mkvcast')) {
    const i = rows.find((r) => r.server === 'icecast' && r.players === m.players);
    if (i === undefined) continue;
    out.push({
      players: m.players,
      keptUp: ratio(m.keptUp, i.keptUp),
      deliveredGbps: ratio(m.deliveredGbps, i.deliveredGbps),
      cpuSecondsPerGbit: ratio(m.serverCpuSecondsPerGbit, i.serverCpuSecondsPerGbit),
      peakRss: ratio(m.peakRssMB, i.peakRssMB),
      perPlayerRss: ratio(m.perPlayerRssBytes, i.perPlayerRssBytes),
      ttfbP50: ratio(m.ttfbMs.p50, i.ttfbMs.p50),
      ttfbP99: ratio(m.ttfbMs.p99, i.ttfbMs.p99),
      loadgenCpu: ratio(m.loadgenCpuPct, i.loadgenCpuPct),
    });
  }
  return out;
}

export function ratioTable(ratios: Ratios[]): string {
  const head = ['mkvcast/icecast', 'kept up', 'Gbit/s', 'CPU s/Gbit', 'peak RSS', 'B/player', 'TTFB p50', 'TTFB p99', 'loadgen CPU'];
  const body = ratios.map((r) => [
    `${r.players} players`, fmt(r.keptUp), fmt(r.deliveredGbps), fmt(r.cpuSecondsPerGbit), fmt(r.peakRss),
    fmt(r.perPlayerRss), fmt(r.ttfbP50), fmt(r.ttfbP99), fmt(r.loadgenCpu),
  ]);
  return grid(head, body);
}

export function disturbed(rows: FanoutResult[]): Summary['disturbed'] {
  return rows
    .filter((r) => r.otherCpuPct > DISTURBED_OTHER_CPU_PCT)
    .map((r) => ({ server: r.server, players: r.players, otherCpuPct: r.otherCpuPct }));
}

export function saturated(rows: FanoutResult[]): Summary['loadgenSaturated'] {
  return rows.filter((r) => r.loadgenSaturated).map((r) => ({ server: r.server, players: r.players, cpuPct: Math.max(r.loadgenCpuPct, r.loadgenCrowdCpuPct) }));
}
