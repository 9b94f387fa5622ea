// `npm run bench -- --latency`: end-to-end latency, from the publisher's write to the player's
// socket, of mkvcast and Icecast side by side. A publisher process (publisher.ts) PUTs a marked
// WebM stream to the server; the load generator's sampled players note when each marker
// arrives. Per server and player count it reports write → receive p50/p99/max, CPU per
// delivered Gbit, players kept up and the generator's CPU; for mkvcast also where a joining
// player starts (?start=newest and ?start=next) and, with a --max-delay list, one run per value.
import { fileURLToPath } from 'node:url';
import type { FanoutResult } from './fanout.js';
import { measureFanout } from './fanout.js';
import { startIcecast } from './icecast.js';
import type { Support } from './icecastConfig.js';
import type { MarkerPlayer } from './loadgen.js';
import { percentile } from './merge.js';
import { clientsPerEdgeFor, startMkvcast } from './mkvcast.js';
import type { FanoutOptions } from './options.js';
import { fmt, grid } from './report.js';
import type { FanoutSettings, PublisherSpec, ServerName, ServerUnderTest } from './server.js';

const PUBLISHER = fileURLToPath(new URL('./publisher.js', import.meta.url));
/** Publisher write times kept per run, at most (25 fps for 40 minutes). */
const MAX_WRITES = 60_000;
/** The publisher stops on its own this long after the planned end of a run. */
const PUBLISHER_SPARE_S = 120;
/** Frames written this close to the window's end are left out of the latency (see latencyOf). */
const FRAMES_GRACE_MS = 1000;

export interface Spread {
  p50: number | null;
  p99: number | null;
  max: number | null;
  n: number;
}

export interface JoinFigures {
  /** Players of this start mode that got a frame. */
  players: number;
  /** First frame's arrival − its write by the publisher: how far behind live the player starts. */
  behindMs: Spread;
  /** First frame's arrival − the player's connect: how long it waited for a picture. */
  waitMs: Spread;
}

export interface LatencyRow extends Omit<FanoutResult, 'markers'> {
  type: 'latency';
  publisher: 'progressive' | 'cluster';
  /** mkvcast's --max-delay, ms; null for Icecast. */
  maxDelayMs: number | null;
  /** Sampled players (those that searched for markers), and those that received any in the window. */
  sampled: number;
  sampledReceiving: number;
  /** Publisher write → player receive, over every marker the sampled players got in the window. */
  e2eMs: Spread;
  /** mkvcast: where joiners started, per start mode. */
  join?: { newest: JoinFigures; next: JoinFigures };
  /** Which of --rounds this run was, from 1. */
  round: number;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function spread(values: number[]): Spread {
  const sorted = values.sort((a, b) => a - b);
  const r = (x: number | null): number | null => (x === null ? null : round1(x));
  return { p50: r(percentile(sorted, 0.5)), p99: r(percentile(sorted, 0.99)), max: r(sorted.at(-1) ?? null), n: sorted.length };
}

function joinOf(players: MarkerPlayer[], writes: Map<number, number>): JoinFigures {
  const behind: number[] = [];
  const wait: number[] = [];
  for (const p of players) {
    if (p.firstSeq === null || p.firstMs === null) continue;
    const written = writes.get(p.firstSeq);
    if (written !== undefined) behind.push(p.firstMs - written);
    wait.push(p.firstMs - p.startMs);
  }
  return { players: wait.length, behindMs: spread(behind), waitMs: spread(wait) };
}

/**
 * Latency of the frames written in the window, but its last second: older frames arrive in a
 * late joiner's start burst (Icecast's burst-on-connect, mkvcast's newest GOP) and are no measure
 * of live delivery; the last second's might arrive after the players stop and slip out unseen.
 */
function latencyOf(markers: MarkerPlayer[], writes: Map<number, number>, window: { start: number; end: number }): { e2e: Spread; receiving: number } {
  const lat: number[] = [];
  const until = window.end - Math.min(FRAMES_GRACE_MS, (window.end - window.start) / 2);
  let receiving = 0;
  for (const p of markers) {
    if (p.arrivals.length > 0) receiving++;
    for (let i = 0; i + 1 < p.arrivals.length; i += 2) {
      const written = writes.get(p.arrivals[i]!);
      if (written !== undefined && written >= window.start && written <= until) lat.push(p.arrivals[i + 1]! - written);
    }
  }
  return { e2e: spread(lat), receiving };
}

interface Run {
  name: ServerName;
  maxDelayMs: number | null;
}

export interface LatencySettings {
  clip: string;
  rateBps: number;
  icecast: Support;
}

async function runOne(o: FanoutOptions, l: LatencySettings, run: Run, players: number, round: number): Promise<LatencyRow> {
  const lat = o.latency!;
  const writes = new Map<number, number>();
  const publisher: PublisherSpec = {
    verbose: o.verbose,
    args: ({ url, password }) => [
      PUBLISHER, '--url', url, '--clip', l.clip, '--mode', lat.publisher,
      '--duration-s', String(Math.ceil(o.warmupS + o.joinMs / 1000 + o.durationS + PUBLISHER_SPARE_S)),
      ...(password === null ? [] : ['--password', password]),
    ],
    onLine: (line) => {
      const m = /^m (\d+) ([\d.]+)$/.exec(line);
      if (m === null || writes.size >= MAX_WRITES) return;
      writes.set(Number(m[1]), Number(m[2]));
    },
  };
  let server: ServerUnderTest;
  if (run.name === 'mkvcast') {
    const { master, edges, clientsPerEdge, verbose } = o;
    server = await startMkvcast({ master, clip: null, publisher, maxDelay: run.maxDelayMs ?? undefined, edges, clientsPerEdge, players, verbose });
  } else {
    if (!l.icecast.ok) throw new Error(l.icecast.reason);
    server = await startIcecast({ bin: l.icecast.bin, shareDir: l.icecast.shareDir, ffmpeg: '', clip: '', publisher, players, verbose: o.verbose });
  }
  const s: FanoutSettings = {
    joinMs: o.joinMs, durationS: o.durationS, warmupS: o.warmupS, rateBps: l.rateBps, loadgens: o.loadgens, verbose: o.verbose,
    sampled: Math.min(players, lat.sampled),
    ...(run.name === 'mkvcast' ? { nextPath: '/live/live?start=next' } : {}),
  };
  try {
    const details = run.name === 'mkvcast' ? { edges: o.edges, clientsPerEdge: clientsPerEdgeFor({ ...o, players }) } : {};
    const { markers = [], ...result } = await measureFanout(server, players, s, details);
    const { e2e, receiving } = latencyOf(markers, writes, result.windowWallMs);
    const row: LatencyRow = {
      type: 'latency', ...result, publisher: lat.publisher, maxDelayMs: run.maxDelayMs,
      sampled: markers.length, sampledReceiving: receiving, e2eMs: e2e, round,
    };
    if (run.name === 'mkvcast') {
      row.join = { newest: joinOf(markers.filter((p) => !p.next), writes), next: joinOf(markers.filter((p) => p.next), writes) };
    }
    return row;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${server.tail()}`);
  } finally {
    await server.stop();
  }
}

export interface LatencyOutcome {
  rows: LatencyRow[];
  failed: { server: ServerName; players: number; maxDelayMs: number | null; error: string }[];
}

/**
 * Every (player count, server) run, one at a time, each on a fresh server; with --rounds N,
 * the whole list N times over per player count, so that the servers take turns while the
 * machine's speed drifts.
 */
export async function runLatencyBench(o: FanoutOptions, l: LatencySettings): Promise<LatencyOutcome> {
  const runs: Run[] = o.latency!.maxDelays.map((maxDelayMs) => ({ name: 'mkvcast', maxDelayMs }));
  if (l.icecast.ok) runs.push({ name: 'icecast', maxDelayMs: null });
  const rounds = o.latency!.rounds;
  const out: LatencyOutcome = { rows: [], failed: [] };
  for (const players of o.players) {
    for (let round = 1; round <= rounds; round++) {
      for (const run of runs) {
        const label = run.name === 'mkvcast' ? `mkvcast --max-delay ${run.maxDelayMs ?? 'default'}` : run.name;
        const of = rounds > 1 ? `, round ${round} of ${rounds}` : '';
        process.stderr.write(`bench: ${label}, ${o.latency!.publisher} publisher, ${players} players, ${o.durationS} s window${of}\n`);
        try {
          const row = await runOne(o, l, run, players, round);
          out.rows.push(row);
          process.stdout.write(`${JSON.stringify(row)}\n`);
        } catch (err) {
          const error = (err as Error).message;
          out.failed.push({ server: run.name, players, maxDelayMs: run.maxDelayMs, error: error.split('\n')[0]! });
          process.stderr.write(`bench: ${label} at ${players} players failed: ${error}\n`);
          process.stdout.write(`${JSON.stringify({ type: 'latency', server: run.name, players, maxDelayMs: run.maxDelayMs, round, error })}\n`);
        }
      }
    }
  }
  return out;
}

/** One configuration (server, --max-delay, players) over its rounds. */
export interface LatencyMedians {
  server: ServerName;
  maxDelayMs: number | null;
  players: number;
  rounds: number;
  /** Medians over the rounds of each round's p50 and p99; the largest max. */
  e2eMs: { p50: number | null; p99: number | null; max: number | null };
  cpuSecondsPerGbit: number | null;
  /** The fewest players kept up in any round. */
  keptUpLiveMin: number;
  /** mkvcast: its CPU s/Gbit over Icecast's in the same round, per round, and their median. */
  cpuVsIcecast?: { perRound: number[]; median: number | null };
}

/** The middle value; with an even count, the mean of the two middle ones (a lower one would flatter either side). */
function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round(((sorted[mid - 1]! + sorted[mid]!) / 2) * 1000) / 1000;
}
const numbers = (values: (number | null)[]): number[] => values.filter((v): v is number => v !== null);

/** Medians per configuration over --rounds, with each round's CPU ratio to Icecast's run of that round. */
export function latencyMedians(rows: LatencyRow[]): LatencyMedians[] {
  const groups = new Map<string, LatencyRow[]>();
  for (const r of rows) {
    const key = `${r.players} ${r.server} ${r.maxDelayMs}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const icecastCpu = new Map(rows.filter((r) => r.server === 'icecast').map((r) => [`${r.players} ${r.round}`, r.serverCpuSecondsPerGbit]));
  return [...groups.values()].map((g) => {
    const first = g[0]!;
    const m: LatencyMedians = {
      server: first.server, maxDelayMs: first.maxDelayMs, players: first.players, rounds: g.length,
      e2eMs: {
        p50: median(numbers(g.map((r) => r.e2eMs.p50))),
        p99: median(numbers(g.map((r) => r.e2eMs.p99))),
        max: numbers(g.map((r) => r.e2eMs.max)).reduce<number | null>((a, b) => (a === null || b > a ? b : a), null),
      },
      cpuSecondsPerGbit: median(numbers(g.map((r) => r.serverCpuSecondsPerGbit))),
      keptUpLiveMin: Math.min(...g.map((r) => r.keptUpLive)),
    };
    if (first.server === 'mkvcast') {
      const perRound = g.flatMap((r) => {
        const ice = icecastCpu.get(`${r.players} ${r.round}`);
        const own = r.serverCpuSecondsPerGbit;
        return ice === undefined || ice === null || ice <= 0 || own === null ? [] : [Math.round((own / ice) * 1000) / 1000];
      });
      if (perRound.length > 0) m.cpuVsIcecast = { perRound, median: median(perRound) };
    }
    return m;
  });
}

export function mediansTable(medians: LatencyMedians[]): string {
  const head = ['server', 'max-delay', 'players', 'rounds', 'write→receive p50/p99 (medians), max ms', 'CPU s/Gbit (median)', 'kept up (fewest)', 'CPU vs Icecast: median (each round)'];
  const body = medians.map((m) => [
    m.server, m.maxDelayMs === null ? '-' : String(m.maxDelayMs), String(m.players), String(m.rounds),
    `${fmt(m.e2eMs.p50)} / ${fmt(m.e2eMs.p99)}, ${fmt(m.e2eMs.max)}`, fmt(m.cpuSecondsPerGbit), `${m.keptUpLiveMin}/${m.players}`,
    m.cpuVsIcecast === undefined ? '-' : `${fmt(m.cpuVsIcecast.median)} (${m.cpuVsIcecast.perRound.join(', ')})`,
  ]);
  return grid(head, body);
}

const spreadCell = (s: Spread): string => `${fmt(s.p50)} / ${fmt(s.p99)} / ${fmt(s.max)}`;

export function latencyTable(rows: LatencyRow[]): string {
  const rounds = rows.some((r) => r.round > 1);
  const head = [
    'server', 'max-delay', 'players', ...(rounds ? ['round'] : []), 'write→receive p50/p99/max ms', 'sampled', 'CPU s/Gbit', 'Gbit/s', 'kept up',
    'loadgen CPU %', 'pub CPU %', 'other CPU %', 'join newest: behind p50/max', 'join next: behind p50/max, wait p50', '/stats p50/p99',
  ];
  const body = rows.map((r) => {
    const stats = r.latencyMs as { p50?: number; p99?: number } | undefined;
    return [
      r.server, r.maxDelayMs === null ? '-' : String(r.maxDelayMs), String(r.players), ...(rounds ? [String(r.round)] : []), spreadCell(r.e2eMs),
      `${r.sampledReceiving}/${r.sampled}`, fmt(r.serverCpuSecondsPerGbit), String(r.deliveredGbps), `${r.keptUpLive}/${r.players}`,
      `${r.loadgenCpuPct}${r.loadgenSaturated ? ' (!)' : ''}`, fmt(r.publisherCpuPct), String(r.otherCpuPct),
      r.join === undefined ? '-' : `${fmt(r.join.newest.behindMs.p50)} / ${fmt(r.join.newest.behindMs.max)}`,
      r.join === undefined ? '-' : `${fmt(r.join.next.behindMs.p50)} / ${fmt(r.join.next.behindMs.max)}, ${fmt(r.join.next.waitMs.p50)}`,
      stats === undefined ? '-' : `${fmt(stats.p50)} / ${fmt(stats.p99)}`,
    ];
  });
  return grid(head, body);
}

export const LATENCY_LEGEND = [
  'write→receive: wall time at which a sampled player read a video frame\'s marker minus the time the publisher',
  'wrote that frame into its socket (both processes on this machine), over the frames written in the window but',
  'its last second (older ones arrive in late joiners\' start bursts).',
  'sampled: players that searched their bytes for markers / of them, those that got markers in the window.',
  'kept up: players still receiving in the window\'s last second with >= 90 % of the median player\'s bytes/s.',
  'CPU s/Gbit: core-seconds of the server\'s whole process tree per delivered Gbit (publisher apart: "pub").',
  'join: a joining player\'s first frame, its arrival minus its write (how far behind live it starts); "next"',
  'players asked ?start=next (they wait for the next keyframe: "wait" is connect to first frame). /stats: the',
  'latency mkvcast reports itself (source to player socket), a secondary figure.',
].join('\n');
