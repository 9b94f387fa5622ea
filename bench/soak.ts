// `npm run soak -- --minutes N`: mkvcast as it lives on a server for N minutes. A master with 2
// edges serves a looped file to long-running players that record what they get, while
// publishers come and go under new names (ffmpeg -re, icecast:// PUT), short players come and
// go on every live stream, and once a minute an edge (at :20) and the source (at :45) are
// SIGKILLed. Reports memory per process each minute, players lost and why, and decode errors
// in the recordings (soakReport.ts). Exit 0 when no healthy player was lost and every
// recording decodes; 1 otherwise; 2 on the hard timeout; 64 on bad options.
//
// Options: --minutes N (10) --players N long-running (8) --publishers N at a time (3)
//          --short-players N at a time (6) --seed N --keep (keep the recordings) --verbose
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ffmpegPath, makeClip } from '../test/helpers/media.js';
import { installSafetyNet, killStrays, removeOnExit, sleep, spawnTracked, stopChild, tailOutput, watchStray } from './children.js';
import { freePort, get, poll } from './http.js';
import { DEFAULT_MASTER } from './mkvcast.js';
import { descendants } from './procstats.js';
import { LongPlayers, PublisherChurn, ShortPlayers, type Clock, type Rand } from './soakClients.js';
import { holderOf, isChildOf, memoryOf } from './soakProc.js';
import { printReport, type Kill, type MemoryRow, type Role } from './soakReport.js';

const KEY = 'soak';
const EDGES = 2;
const EDGE_KILL_AT_S = 20;
const SOURCE_KILL_AT_S = 45;
const TICK_MS = 500;
/** Setup (clips, start) and teardown (stop, decoding) on top of the run, for the hard timeout. */
const OVERHEAD_S = 600;
/** Long-running player starts in all (replacements, failed starts), per player asked for. */
const MAX_STARTS_PER_PLAYER = 20;

interface SoakOptions {
  minutes: number;
  players: number;
  publishers: number;
  shortPlayers: number;
  seed: number;
  keep: boolean;
  verbose: boolean;
}

class UsageError extends Error {}

function parseSoakOptions(argv: string[]): SoakOptions {
  const { values } = parseArgsOrUsage({
    args: argv,
    strict: true,
    options: {
      minutes: { type: 'string' },
      players: { type: 'string' },
      publishers: { type: 'string' },
      'short-players': { type: 'string' },
      seed: { type: 'string' },
      keep: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const num = (name: keyof typeof values, fallback: number, min: number, max: number): number => {
    const v = values[name];
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number in [${min}, ${max}]`);
    return n;
  };
  return {
    minutes: num('minutes', 10, 1, 240),
    players: num('players', 8, 1, 64),
    publishers: num('publishers', 3, 0, 16),
    shortPlayers: num('short-players', 6, 0, 64),
    seed: num('seed', 1, 0, 2 ** 31),
    keep: values.keep === true,
    verbose: values.verbose === true,
  };
}

/** parseArgs, its complaints (unknown option, missing value) turned into usage errors. */
function parseArgsOrUsage<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** mulberry32: a small seeded generator, so that a run's schedule can be repeated. */
function seeded(seed: number): Rand {
  let a = seed >>> 0;
  return (min, max) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return min + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (max - min);
  };
}

const log = (line: string): void => void process.stderr.write(`soak: ${line}\n`);
const mmss = (ms: number): string => `${Math.floor(ms / 60_000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}`;

interface Stats {
  players: number;
  streams: { name: string }[];
  pids: { master: number; source: number | null; edges: (number | null)[] };
}

async function statsOf(base: string): Promise<Stats | null> {
  const res = await get(`${base}/stats`, 2000);
  try {
    return res?.status === 200 ? (JSON.parse(res.body) as Stats) : null;
  } catch {
    return null;
  }
}

/**
 * The server's processes as its /stats names them (up to a second late): which pid plays which
 * role, their memory now, and the SIGKILLs the soak sends them.
 */
class Processes {
  readonly roles = new Map<number, Role>();
  readonly kills: Kill[] = [];
  readonly rows: MemoryRow[] = [];
  readonly #base: string;
  readonly #master: number;
  readonly #clock: Clock;
  #stats: Stats | null = null;

  constructor(base: string, master: number, clock: Clock) {
    this.#base = base;
    this.#master = master;
    this.#clock = clock;
    this.roles.set(master, 'master');
  }

  async refresh(): Promise<Stats | null> {
    this.#stats = (await statsOf(this.#base)) ?? this.#stats;
    const pids = this.#stats?.pids;
    if (pids?.source) this.roles.set(pids.source, 'source');
    pids?.edges.forEach((pid, i) => pid && this.roles.set(pid, `edge ${i + 1}`));
    return this.#stats;
  }

  /** A row of the memory table. */
  async sample(label?: string): Promise<void> {
    const s = await this.refresh();
    const procs: [Role, number | null][] = [
      ['master', this.#master],
      ['source', s?.pids.source ?? null],
      ...(s?.pids.edges ?? []).map((pid, i): [Role, number | null] => [`edge ${i + 1}`, pid]),
    ];
    const cells = procs.map(([role, pid]) => ({ role, pid, memory: pid === null ? null : memoryOf(pid) }));
    this.rows.push({ atMs: this.#clock(), ...(label ? { label } : {}), players: s?.players ?? null, streams: s?.streams.length ?? null, cells });
  }

  /** SIGKILLs the source, or edge `index` + 1. */
  async kill(what: 'source' | number): Promise<void> {
    const pids = (await this.refresh())?.pids;
    const pid = what === 'source' ? pids?.source : pids?.edges[what];
    const name = what === 'source' ? 'source' : `edge ${what + 1}`;
    // Stats are up to a second old: kill only a live child of this master, never a reused pid.
    if (!pid || !isChildOf(pid, this.#master)) return log(`${mmss(this.#clock())} ${name}: no live pid to kill (${pid})`);
    process.kill(pid, 'SIGKILL');
    this.kills.push({ atMs: this.#clock(), what: name, pid });
    log(`${mmss(this.#clock())} SIGKILL ${name} (pid ${pid})`);
  }
}

async function startMaster(clip: string, verbose: boolean): Promise<{ child: ReturnType<typeof spawnTracked>; base: string; tail: () => string }> {
  const port = await freePort();
  const args = [
    DEFAULT_MASTER, `loop=${clip}`, '--loop', '--edges', String(EDGES), '--port', String(port), '--host', '127.0.0.1',
    '--publish-key', KEY, '--grace', '2', '--clients-per-edge', '64', '--max-published', '16',
  ];
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = tailOutput(child, 8000, verbose ? (line) => process.stderr.write(`[mkvcast] ${line}\n`) : undefined);
  const base = `http://127.0.0.1:${port}`;
  // Up once the edges list the looped stream (GET /live/ answers with the live streams).
  const up = await poll(async () => ((await get(`${base}/live/`, 1000))?.body.includes('"loop"') ? true : null), {
    timeoutMs: 30_000,
    everyMs: 200,
    abort: () => (child.exitCode !== null ? `master exited (${child.exitCode})\n${tail()}` : null),
  });
  if (up === null) throw new Error(`mkvcast did not serve /live/loop within 30 s\n${tail()}`);
  return { child, base, tail };
}

async function main(): Promise<number> {
  const o = parseSoakOptions(process.argv.slice(2));
  installSafetyNet((o.minutes * 60 + OVERHEAD_S) * 1000);
  const [loopClip, pubClip] = await Promise.all([makeClip('webm-vp8-opus', { seconds: 30 }), makeClip('webm-vp8-opus', { seconds: 10 })]);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-soak-'));
  if (!o.keep) removeOnExit(dir);
  const { child: master, base, tail } = await startMaster(loopClip, o.verbose);
  const masterPid = master.pid!;
  const port = Number(new URL(base).port);
  log(`${o.minutes} min; master pid ${masterPid} on ${base}; recordings in ${dir}`);

  const t0 = performance.now();
  const clock = (): number => performance.now() - t0;
  const rand = seeded(o.seed);
  const procs = new Processes(base, masterPid, clock);
  await procs.sample();
  const long = new LongPlayers({
    url: `${base}/live/loop`, dir, count: o.players, maxStarts: o.players * MAX_STARTS_PER_PLAYER, clock,
    locate: (localPort) => holderOf(port, localPort, descendants(masterPid).filter((p) => p !== masterPid)),
  });
  const publishers = new PublisherChurn({
    ffmpeg: ffmpegPath, clip: pubClip, clipSeconds: 10, target: `icecast://source:${KEY}@127.0.0.1:${port}`, slots: o.publishers, rand, clock,
  });
  const shorts = new ShortPlayers(base, o.shortPlayers, rand);

  const endMs = o.minutes * 60_000;
  /** True once a minute, from `atS` seconds into it, until the end. */
  const onceAMinute = (atS: number, done: Set<number>): boolean => {
    const now = clock();
    const minute = Math.floor(now / 60_000);
    if (now >= endMs || done.has(minute) || now < minute * 60_000 + atS * 1000) return false;
    done.add(minute);
    return true;
  };
  const edgeKills = new Set<number>();
  const sourceKills = new Set<number>();
  let nextRow = 60_000;
  while (clock() < endMs) {
    if (master.exitCode !== null) throw new Error(`master exited (${master.exitCode}) during the run\n${tail()}`);
    // Edge 1, edge 2, edge 1, …
    if (onceAMinute(EDGE_KILL_AT_S, edgeKills)) await procs.kill((edgeKills.size - 1) % EDGES);
    if (onceAMinute(SOURCE_KILL_AT_S, sourceKills)) await procs.kill('source');
    long.tick(({ name, status, lost, servedBy }) => {
      const on = servedBy === null ? '' : ` (on ${procs.roles.get(servedBy) ?? 'pid'} ${servedBy})`;
      log(`${mmss(lost!.atMs)} ${name} ${status === 200 ? 'lost' : 'did not start'}: ${lost!.how}${on}`);
    });
    if (clock() >= nextRow) {
      await procs.sample();
      nextRow += 60_000;
    } else await procs.refresh();
    await sleep(TICK_MS);
  }

  await procs.sample();
  log('time is up; stopping clients');
  const cutAtMs = clock();
  await Promise.all([publishers.stop(), shorts.stop(), long.stop()]);
  // Memory with no client left and only the looped stream: what the churn left behind.
  const idle = async (): Promise<true | null> => {
    const s = await statsOf(base);
    return s !== null && s.players === 0 && s.streams.every((x) => x.name === 'loop') ? true : null;
  };
  await poll(idle, { timeoutMs: 15_000, everyMs: 500 });
  await procs.sample('idle');
  for (const pid of descendants(masterPid)) watchStray(pid);
  const clean = await stopChild(master, 10_000);
  const strays = killStrays();
  log(`master stopped${clean ? '' : ' (killed: it ignored SIGTERM)'}${strays.length > 0 ? `; killed leftovers: ${strays.join(', ')}` : ''}`);

  return printReport({
    minutes: o.minutes, cutAtMs, kills: procs.kills, rows: procs.rows, roles: procs.roles, long: long.records,
    publishers: publishers.counts, shorts: shorts.counts, ffmpeg: ffmpegPath, stoppedCleanly: clean,
  });
}

// Ctrl-C: the safety net stops every process; the run's own failures that follow are its echo.
let interrupted = false;
process.once('SIGINT', () => (interrupted = true));

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    // The safety net exits (130) once every process is stopped.
    if (interrupted) return log('interrupted; stopping every process');
    log(err instanceof UsageError ? err.message : (err.stack ?? err.message));
    process.exit(err instanceof UsageError ? 64 : 1);
  },
);
