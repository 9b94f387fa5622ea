// Command line of `npm run bench`.
//
//   node build/bench/bench.js [--vs icecast] [--players 1000,2000,4000] [--edges 2]
//        [--duration-s 10] [--join-ms 1000] [--warmup-s 3] [--clients-per-edge N] [--loadgens N]
//        [--clip file.webm] [--master path/to/master.js] [--icecast-bin path] [--tiny] [--verbose]
//   node build/bench/bench.js --streams 50 --players 1000 [same options]
//        mkvcast alone serving 50 looped copies of the clip (live1 … live50), the players spread
//        evenly over them: what a stream costs beside a player.
//   node build/bench/bench.js --crowd 5000 [same options]
//        a flash crowd: --players 5000 from 2 load generators, a 3 s window; what it is about
//        is TTFB p50/p99/max and the kernel's listen-queue drops (any flag above overrides).
//   node build/bench/bench.js --latency [--players 100,1000,4000] [--max-delay 50 | 0,20,50,100]
//        [--publisher progressive|cluster] [--sampled 40] [--rounds 1] [same options]
//        end-to-end latency, publisher write to player socket, mkvcast (one run per --max-delay)
//        and Icecast side by side (latency.ts); --rounds N repeats every run N times, taking
//        turns, and adds a table of medians with each round's CPU ratio to Icecast.
//   node build/bench/bench.js --ingest [--ingest-mb 256] [--runs 5] [--ingest-input file.mkv] [--tiny]
//   node build/bench/bench.js --idle [--runs 5] [--settle-s 6] [--edges 2] [--idle-input file.webm] [--tiny]
//        idle memory (PSS and private) of master, source and edges, with no input and with one
//        looped input and no players (idle.ts).
import { parseArgs } from 'node:util';
import { DEFAULT_MASTER } from './mkvcast.js';

const MAX_PLAYERS = 20_000;
/** A bound on a run's inputs: each is a file read in real time by the source. */
const MAX_STREAMS = 200;

export interface FanoutOptions {
  mode: 'fanout';
  vs: 'icecast' | null;
  players: number[];
  edges: number;
  durationS: number;
  joinMs: number;
  warmupS: number;
  clientsPerEdge: number | null;
  /** Load generator processes the players are split over. */
  loadgens: number;
  clip: string | null;
  /** Looped copies of the clip served (live1 … liveN), the players spread evenly over them; 1: one stream, live. */
  streams: number;
  master: string;
  icecastBin: string | null;
  /** --latency: the end-to-end latency bench; null: the fan-out bench. */
  latency: LatencyOptions | null;
  tiny: boolean;
  verbose: boolean;
}

export interface LatencyOptions {
  publisher: 'progressive' | 'cluster';
  /** mkvcast runs, one per --max-delay value (ms); null: the server's default. */
  maxDelays: (number | null)[];
  /** Players per run that search their bytes for markers. */
  sampled: number;
  /** Times every run is repeated, the servers taking turns (a shared machine drifts). */
  rounds: number;
}

export interface IngestOptions {
  mode: 'ingest';
  /** Bytes pushed through the scanner per timed run (the input is fed as often as needed). */
  ingestBytes: number;
  /** Bytes sent per IPC run. */
  ipcBytes: number;
  runs: number;
  input: string | null;
  tiny: boolean;
  verbose: boolean;
}

export interface IdleOptions {
  mode: 'idle';
  /** Fresh servers per case. */
  runs: number;
  /** Seconds between the master's "listening" line and the sample. */
  settleS: number;
  edges: number;
  /** The looped input of the second case; null: demo/demo.webm. */
  input: string | null;
  master: string;
  verbose: boolean;
}

export type Options = FanoutOptions | IngestOptions | IdleOptions;

export class UsageError extends Error {}

function num(v: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in [${min}, ${max}]`);
  return n;
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      vs: { type: 'string' },
      players: { type: 'string' },
      edges: { type: 'string' },
      'duration-s': { type: 'string' },
      'join-ms': { type: 'string' },
      'warmup-s': { type: 'string' },
      'clients-per-edge': { type: 'string' },
      loadgens: { type: 'string' },
      crowd: { type: 'string' },
      streams: { type: 'string' },
      clip: { type: 'string' },
      master: { type: 'string' },
      'icecast-bin': { type: 'string' },
      ingest: { type: 'boolean', default: false },
      latency: { type: 'boolean', default: false },
      publisher: { type: 'string' },
      'max-delay': { type: 'string' },
      sampled: { type: 'string' },
      rounds: { type: 'string' },
      'ingest-mb': { type: 'string' },
      'ipc-mb': { type: 'string' },
      runs: { type: 'string' },
      'ingest-input': { type: 'string' },
      idle: { type: 'boolean', default: false },
      'settle-s': { type: 'string' },
      'idle-input': { type: 'string' },
      tiny: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const tiny = values.tiny === true;
  const verbose = values.verbose === true;
  if (values.ingest === true) {
    const MB = 1024 * 1024;
    return {
      mode: 'ingest',
      ingestBytes: num(values['ingest-mb'], 'ingest-mb', tiny ? 4 : 256, 1, 65536) * MB,
      ipcBytes: num(values['ipc-mb'], 'ipc-mb', tiny ? 8 : 1024, 1, 65536) * MB,
      runs: Math.floor(num(values.runs, 'runs', tiny ? 1 : 5, 1, 50)),
      input: values['ingest-input'] ?? null,
      tiny,
      verbose,
    };
  }
  if (values.idle === true) {
    return {
      mode: 'idle',
      runs: Math.floor(num(values.runs, 'runs', tiny ? 1 : 5, 1, 50)),
      settleS: num(values['settle-s'], 'settle-s', tiny ? 1 : 6, 0, 600),
      edges: Math.floor(num(values.edges, 'edges', 2, 1, 64)),
      input: values['idle-input'] ?? null,
      master: values.master ?? DEFAULT_MASTER,
      verbose,
    };
  }
  if (values.vs !== undefined && values.vs !== 'icecast') throw new UsageError(`--vs: only icecast is supported, not ${values.vs}`);
  const latency = values.latency === true ? latencyOptions(values, tiny) : null;
  if (latency === null && (values.publisher ?? values['max-delay'] ?? values.sampled ?? values.rounds) !== undefined) {
    throw new UsageError('--publisher, --max-delay, --sampled and --rounds go with --latency');
  }
  // The latency bench is a comparison: Icecast is measured whenever it can be.
  const vs = values.vs === 'icecast' || latency !== null ? 'icecast' : null;
  if (values.crowd !== undefined && values.players !== undefined) throw new UsageError('--crowd N is --players N: give one of them');
  const crowd = values.crowd === undefined ? null : Math.floor(num(values.crowd, 'crowd', 0, 1, MAX_PLAYERS));
  const defaultPlayers =
    crowd !== null ? String(crowd) : tiny ? (latency !== null ? '10' : '20') : latency !== null ? '100,1000,4000' : vs === 'icecast' ? '1000,2000,4000' : '1000,4000';
  const players = (values.players ?? defaultPlayers).split(',').map((s) => Math.floor(num(s.trim(), 'players', 0, 1, MAX_PLAYERS)));
  const cpe = values['clients-per-edge'];
  const streams = Math.floor(num(values.streams, 'streams', 1, 1, MAX_STREAMS));
  if (streams > 1 && (latency !== null || vs !== null)) throw new UsageError('--streams measures mkvcast alone: not with --latency or --vs');
  return {
    mode: 'fanout',
    vs,
    players,
    edges: Math.floor(num(values.edges, 'edges', 2, 1, 64)),
    durationS: num(values['duration-s'], 'duration-s', tiny ? 2 : crowd !== null ? 3 : 10, 1, 600),
    joinMs: num(values['join-ms'], 'join-ms', tiny ? 500 : 1000, 0, 60_000),
    warmupS: num(values['warmup-s'], 'warmup-s', tiny ? 1 : 3, 0, 60),
    clientsPerEdge: cpe === undefined ? null : Math.floor(num(cpe, 'clients-per-edge', 0, 1, MAX_PLAYERS)),
    loadgens: Math.floor(num(values.loadgens, 'loadgens', crowd !== null ? 2 : 1, 1, 8)),
    clip: values.clip ?? null,
    streams,
    master: values.master ?? DEFAULT_MASTER,
    icecastBin: values['icecast-bin'] ?? null,
    latency,
    tiny,
    verbose,
  };
}

function latencyOptions(values: { publisher?: string; 'max-delay'?: string; sampled?: string; rounds?: string }, tiny: boolean): LatencyOptions {
  const publisher = values.publisher ?? 'progressive';
  if (publisher !== 'progressive' && publisher !== 'cluster') throw new UsageError(`--publisher: progressive or cluster, not ${publisher}`);
  const maxDelays = values['max-delay'] === undefined ? [null] : values['max-delay'].split(',').map((v) => Math.floor(num(v.trim(), 'max-delay', 0, 0, 10_000)));
  return {
    publisher,
    maxDelays,
    sampled: Math.floor(num(values.sampled, 'sampled', tiny ? 10 : 40, 1, 1000)),
    rounds: Math.floor(num(values.rounds, 'rounds', 1, 1, 20)),
  };
}
