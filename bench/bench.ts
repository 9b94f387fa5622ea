// `npm run bench`: serve a looped 500 kbit/s WebM through the real master and its edges, aim the
// load generator at it with a flash crowd, and report delivery, server CPU and memory per run.
//
//   node build/bench/bench.js [--players 1000,4000] [--edges 2] [--duration-s 10]
//        [--clients-per-edge N] [--join-ms 1000] [--warmup-s 3] [--clip file.webm] [--tiny]
//        [--verbose]
//
// Each player count gets a fresh master (so one run's leftovers do not weigh on the next),
// with room for every player: --clients-per-edge defaults to ceil(players / edges) + 16.
// Prints one JSON line per run on stdout, then a table.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeClip, probe } from '../test/helpers/media.js';
import type { LoadReport } from './loadgen.js';
import { cpuDelta, readProc, sampleTree } from './procstats.js';
import type { TreeSample } from './procstats.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url));
const CLIP_SECONDS = 30;
const MASTER_START_TIMEOUT_MS = 30_000;
const MASTER_STOP_TIMEOUT_MS = 10_000;
const RSS_POLL_MS = 250;
const MAX_PLAYERS = 20_000;
const MiB = 1024 * 1024;

interface Options {
  players: number[];
  edges: number;
  durationS: number;
  joinMs: number;
  warmupS: number;
  clientsPerEdge: number | null;
  clip: string | null;
  master: string;
  verbose: boolean;
}

export interface RunResult {
  players: number;
  requested: number;
  ok200: number;
  errors: number;
  keptUp: number | null;
  deliveredMbps: number;
  serverCpuPct: number;
  serverCpuSecondsPerGbit: number | null;
  serverRssMB: number;
  idleRssMB: number;
  ttfbMs: { p50: number | null; p99: number | null };
  loadgenCpuPct: number;
  edges: number;
  clientsPerEdge: number;
  windowS: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      players: { type: 'string' },
      edges: { type: 'string' },
      'duration-s': { type: 'string' },
      'join-ms': { type: 'string' },
      'warmup-s': { type: 'string' },
      'clients-per-edge': { type: 'string' },
      clip: { type: 'string' },
      master: { type: 'string' },
      tiny: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
    },
  });
  const num = (v: string | undefined, name: string, fallback: number, min: number, max: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be in [${min}, ${max}]`);
    return n;
  };
  const tiny = values.tiny === true;
  const players = (values.players ?? (tiny ? '20' : '1000,4000'))
    .split(',')
    .map((s) => Math.floor(num(s.trim(), 'players', 0, 1, MAX_PLAYERS)));
  const cpe = values['clients-per-edge'];
  return {
    players,
    edges: Math.floor(num(values.edges, 'edges', 2, 1, 64)),
    durationS: num(values['duration-s'], 'duration-s', tiny ? 3 : 10, 1, 600),
    joinMs: num(values['join-ms'], 'join-ms', 1000, 0, 60_000),
    warmupS: num(values['warmup-s'], 'warmup-s', tiny ? 2 : 3, 0, 60),
    clientsPerEdge: cpe === undefined ? null : Math.floor(num(cpe, 'clients-per-edge', 0, 1, MAX_PLAYERS)),
    clip: values.clip ?? null,
    master: values.master ?? `${REPO_ROOT}packages/master/bin/master.js`,
    verbose: values.verbose === true,
  };
}

/** Every child we start, so that a timeout or a signal can stop them. */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Master {
  child: ChildProcess;
  pid: number;
  url: string;
  tail: () => string;
}

/** Starts the master and resolves once it prints its listening address. */
function startMaster(o: Options, clip: string, clientsPerEdge: number): Promise<Master> {
  const args = [
    o.master, clip, '--edges', String(o.edges), '--port', '0', '--host', '127.0.0.1', '--loop',
    '--name', 'live', '--clients-per-edge', String(clientsPerEdge),
  ];
  const child = track(spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let tail = '';
  const tailOf = (): string => tail;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('master did not report listening in time')), MASTER_START_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${err.message}\n--- master output ---\n${tail}`));
    };
    // A moment's grace lets the last lines of output (the reason it died) arrive first.
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      setTimeout(() => fail(new Error(`master exited during start (${code ?? signal})`)), 200);
    };
    child.once('error', fail);
    child.once('exit', onExit);
    // Both streams are read to the end, or a chatty master would block on a full pipe.
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        tail = (tail + line + '\n').slice(-4000);
        if (o.verbose) process.stderr.write(`[master] ${line}\n`);
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(line);
        if (m === null || child.pid === undefined) return;
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        child.removeListener('error', fail);
        resolve({ child, pid: child.pid, url: `${m[1]}/live/live`, tail: tailOf });
      });
    }
  });
}

/** SIGTERM, then SIGKILL for the master and any of its processes still alive after it. */
async function stopMaster(m: Master): Promise<void> {
  const tree = [...sampleTree(m.pid).perPid.values()];
  const exited = new Promise<void>((resolve) => {
    if (m.child.exitCode !== null || m.child.signalCode !== null) resolve();
    else m.child.once('exit', () => resolve());
  });
  m.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const clean = await Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), MASTER_STOP_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (!clean) {
    process.stderr.write('bench: master ignored SIGTERM; killing it\n');
    m.child.kill('SIGKILL');
    await exited;
  }
  await sleep(500);
  for (const p of tree) {
    const now = readProc(p.pid);
    // Same pid and start time: still the process we started, not a reused pid.
    if (now !== null && now.startTicks === p.startTicks) {
      process.stderr.write(`bench: killing leftover ${p.comm} ${p.pid}\n`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // it exited in between
      }
    }
  }
}

interface LoadRun {
  report: LoadReport;
  before: TreeSample;
  after: TreeSample;
  peakRssBytes: number;
}

/** Runs the load generator against the master, sampling the master's tree during the window. */
function runLoad(o: Options, m: Master, players: number, rateBps: number): Promise<LoadRun> {
  const args = [
    LOADGEN, '--url', m.url, '--players', String(players), '--join-ms', String(o.joinMs),
    '--duration-s', String(o.durationS), '--rate-bps', String(Math.round(rateBps)),
  ];
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let errText = '';
  let before: TreeSample | null = null;
  let after: TreeSample | null = null;
  let peakRssBytes = 0;
  const poll = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, sampleTree(m.pid).rssBytes);
  }, RSS_POLL_MS);
  const limit = setTimeout(() => child.kill('SIGKILL'), o.joinMs + o.durationS * 1000 + 60_000);
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (line === 'loadgen: window start') before = sampleTree(m.pid);
    else if (line === 'loadgen: window end') after = sampleTree(m.pid);
    else errText = (errText + line + '\n').slice(-4000);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearInterval(poll);
      clearTimeout(limit);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (before === null || after === null || line === '') {
        reject(new Error(`loadgen failed (exit ${code}): ${errText}`));
        return;
      }
      peakRssBytes = Math.max(peakRssBytes, after.rssBytes);
      resolve({ report: JSON.parse(line) as LoadReport, before, after, peakRssBytes });
    });
  });
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

async function runOne(o: Options, clip: string, rateBps: number, players: number): Promise<RunResult> {
  const clientsPerEdge = o.clientsPerEdge ?? Math.ceil(players / o.edges) + 16;
  const master = await startMaster(o, clip, clientsPerEdge);
  try {
    await sleep(o.warmupS * 1000);
    const idle = sampleTree(master.pid);
    const { report, before, after, peakRssBytes } = await runLoad(o, master, players, rateBps);
    const serverCpuS = cpuDelta(before, after);
    const sampledS = (after.atMs - before.atMs) / 1000;
    const gigabits = (report.windowBytes * 8) / 1e9;
    const loadgenCpuS = report.cpuWindow.userS + report.cpuWindow.systemS;
    return {
      players,
      requested: report.requested,
      ok200: report.ok200,
      errors: report.errors,
      keptUp: report.keptUp,
      deliveredMbps: round1(report.gbps * 1000),
      serverCpuPct: round1((serverCpuS / sampledS) * 100),
      serverCpuSecondsPerGbit: gigabits > 0 ? Math.round((serverCpuS / gigabits) * 1000) / 1000 : null,
      serverRssMB: round1(peakRssBytes / MiB),
      idleRssMB: round1(idle.rssBytes / MiB),
      ttfbMs: { p50: report.ttfbMs.p50, p99: report.ttfbMs.p99 },
      loadgenCpuPct: round1((loadgenCpuS / report.windowS) * 100),
      edges: o.edges,
      clientsPerEdge,
      windowS: report.windowS,
    };
  } finally {
    await stopMaster(master);
  }
}

function table(rows: RunResult[]): string {
  const head = ['players', 'kept up', 'Mbit/s', 'srv CPU %', 'CPU s/Gbit', 'RSS MB', 'idle MB', 'TTFB p50/p99 ms', 'loadgen CPU %'];
  const body = rows.map((r) => [
    String(r.players), `${r.keptUp ?? '-'}`, String(r.deliveredMbps), String(r.serverCpuPct),
    String(r.serverCpuSecondsPerGbit ?? '-'), String(r.serverRssMB), String(r.idleRssMB),
    `${r.ttfbMs.p50 ?? '-'} / ${r.ttfbMs.p99 ?? '-'}`, String(r.loadgenCpuPct),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => c.padStart(widths[i]!)).join('  ');
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...body.map(fmt)].join('\n');
}

async function clipDuration(file: string): Promise<number> {
  const p = await probe(file);
  if (p.firstPtsS === null || p.lastPtsS === null || p.lastPtsS <= p.firstPtsS) {
    throw new Error(`cannot tell the duration of ${file}: ${p.errors}`);
  }
  return p.lastPtsS - p.firstPtsS;
}

function killAll(): void {
  for (const child of children) child.kill('SIGKILL');
}

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const perRunS = MASTER_START_TIMEOUT_MS / 1000 + o.warmupS + o.joinMs / 1000 + o.durationS + 90;
  const hard = setTimeout(() => {
    process.stderr.write('bench: hard timeout\n');
    killAll();
    process.exit(2);
  }, (180 + perRunS * o.players.length) * 1000);
  hard.unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }

  const clip = o.clip ?? (await makeClip('webm-vp8-opus', { seconds: CLIP_SECONDS }));
  // The expected per-player rate: the clip's bytes over its length (headers and Cues are noise).
  const rateBps = ((await stat(clip)).size * 8) / (o.clip === null ? CLIP_SECONDS : await clipDuration(clip));
  process.stderr.write(`bench: clip ${clip} (${Math.round(rateBps / 1000)} kbit/s)\n`);

  const rows: RunResult[] = [];
  let failed = 0;
  for (const players of o.players) {
    process.stderr.write(`bench: ${players} players, ${o.edges} edges, ${o.durationS} s window\n`);
    try {
      const row = await runOne(o, clip, rateBps, players);
      rows.push(row);
      process.stdout.write(`${JSON.stringify(row)}\n`);
    } catch (err) {
      failed++;
      process.stdout.write(`${JSON.stringify({ players, error: (err as Error).message })}\n`);
    }
  }
  if (rows.length > 0) process.stdout.write(`\n${table(rows)}\n`);
  clearTimeout(hard);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
