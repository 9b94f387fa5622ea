// One fan-out measurement: a flash crowd from the load generator (a separate process) against a
// running server, with the server's CPU and memory sampled from /proc around the window.
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { sleep, spawnTracked, stopChild } from './children.js';
import type { LoadReport, MarkerPlayer } from './loadgen.js';
import { mergeReports } from './merge.js';
import type { MergedLoad } from './merge.js';
import { cpuDelta, machineCpu, sample, tcpCounters, tcpDelta } from './procstats.js';
import type { MachineCpu, TcpCounters } from './procstats.js';
import type { TreeSample } from './procstats.js';
import type { FanoutSettings, ServerName, ServerUnderTest } from './server.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url));
const RSS_POLL_MS = 250;
/** Idle RSS: the mean of this many samples, RSS_POLL_MS apart, at the end of the warm-up. */
const IDLE_SAMPLES = 5;
/** Past the planned end of the load generator's run, kill it. */
const LOADGEN_GRACE_MS = 60_000;
/** Load generator CPU (share of one core) past which it may be what limits the figures. */
export const LOADGEN_SATURATED = 0.9;
const MiB = 1024 * 1024;

export interface FanoutResult {
  server: ServerName;
  players: number;
  ok200: number;
  errors: number;
  errorCodes: Record<string, number>;
  closedEarly: number;
  /** Players that never got a body byte. */
  noBody: number;
  /** Players that received ≥ 90 % of the stream rate over the window. */
  keptUp: number | null;
  /** Players still receiving at the end whose window bytes were within 10 % of the median's. */
  keptUpLive: number;
  deliveredGbps: number;
  /** All server processes, share of one core over the window, in %. */
  serverCpuPct: number;
  serverCpuSecondsPerGbit: number | null;
  peakRssMB: number;
  /** Mean RSS at the end of the warm-up, before the crowd. */
  idleRssMB: number;
  /** Mean RSS over the measuring window, every player connected (one sample would be GC noise). */
  rssAtNMB: number;
  /** (RSS at N − idle RSS) / N. */
  perPlayerRssBytes: number;
  ttfbMs: { p50: number | null; p99: number | null; max: number | null };
  /** TCP connect alone (the kernel's handshake): over 1 s, SYNs were dropped and retried. */
  connectMs: { p50: number | null; p99: number | null; max: number | null };
  /** Load generator processes the players were split over. */
  loadgens: number;
  /** The busiest load generator's CPU over the window, % of one core. */
  loadgenCpuPct: number;
  /** The same from its first connect until its last player's first byte: the crowd itself. */
  loadgenCrowdCpuPct: number;
  loadgenSaturated: boolean;
  /**
   * The kernel's TCP counters over the run (crowd and window), for the whole network namespace:
   * handshakes dropped at the listener and the SYN retransmissions they cost. Null off Linux.
   */
  tcp: TcpCounters | null;
  /**
   * CPU of everything else on the machine during the window (% of one core): not the server,
   * its publisher or the load generator. High values mean the figures are disturbed.
   */
  otherCpuPct: number;
  /** Softirq time of the whole machine in the window (% of one core): mostly loopback TCP delivery. */
  softirqCpuPct: number;
  /** Icecast only: the ffmpeg publisher's CPU, not counted as the server's. */
  publisherCpuPct?: number;
  /** mkvcast only, when its /stats reports it: source → player socket. */
  latencyMs?: unknown;
  windowS: number;
  details: Record<string, unknown>;
  /** The sampled players' markers (latency bench); left out of the printed JSON. */
  markers?: MarkerPlayer[];
  /** Wall-clock ms (timeOrigin + now) of the window's start and end. */
  windowWallMs: { start: number; end: number };
}

interface LoadRun {
  report: MergedLoad;
  tcp: TcpCounters | null;
  before: TreeSample;
  after: TreeSample;
  pubBefore: TreeSample;
  pubAfter: TreeSample;
  /** The machine's CPU time at the window's start and end. */
  machineBefore: MachineCpu;
  machineAfter: MachineCpu;
  /** This orchestrator's own CPU seconds in the window (its /proc sampling), not a disturbance. */
  selfS: number;
  peakRssBytes: number;
  /** Mean of the RSS samples taken inside the window. */
  windowRssBytes: number;
  reported: Record<string, unknown>;
  windowWallMs: { start: number; end: number };
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export async function measureFanout(
  server: ServerUnderTest,
  players: number,
  s: FanoutSettings,
  details: Record<string, unknown>,
): Promise<FanoutResult> {
  await sleep(Math.max(0, s.warmupS * 1000 - IDLE_SAMPLES * RSS_POLL_MS));
  const down = server.failure();
  if (down !== null) throw new Error(`${down} before the crowd came`);
  const idle = await meanRss(server, IDLE_SAMPLES);
  const run = await runLoad(server, players, s);
  const died = server.failure();
  if (died !== null) throw new Error(`${died} during the run`);
  return summarize(server.name, players, idle, run, details);
}

async function meanRss(server: ServerUnderTest, n: number): Promise<number> {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (i > 0) await sleep(RSS_POLL_MS);
    sum += sample(server.serverPids()).rssBytes;
  }
  return sum / n;
}

function summarize(name: ServerName, players: number, idleRss: number, run: LoadRun, details: Record<string, unknown>): FanoutResult {
  const { report, before, after } = run;
  const sampledS = (after.atMs - before.atMs) / 1000;
  const serverCpuS = cpuDelta(before, after);
  const gigabits = (report.windowBytes * 8) / 1e9;
  const loadgenS = report.cpuWindowS;
  const publisherS = cpuDelta(run.pubBefore, run.pubAfter);
  const { machineBefore: m0, machineAfter: m1 } = run;
  const otherS = Math.max(0, m1.busyS - m0.busyS - serverCpuS - publisherS - loadgenS - run.selfS);
  const result: FanoutResult = {
    server: name,
    players,
    ok200: report.ok200,
    errors: report.errors,
    errorCodes: report.errorCodes,
    closedEarly: report.closedEarly,
    noBody: report.noBody,
    keptUp: report.keptUp,
    keptUpLive: report.keptUpLive,
    deliveredGbps: report.gbps,
    serverCpuPct: round1((serverCpuS / sampledS) * 100),
    serverCpuSecondsPerGbit: gigabits > 0 ? Math.round((serverCpuS / gigabits) * 1000) / 1000 : null,
    peakRssMB: round1(Math.max(run.peakRssBytes, after.rssBytes) / MiB),
    idleRssMB: round1(idleRss / MiB),
    rssAtNMB: round1(run.windowRssBytes / MiB),
    perPlayerRssBytes: Math.round((run.windowRssBytes - idleRss) / players),
    ttfbMs: report.ttfbMs,
    connectMs: report.connectMs,
    loadgens: report.processes,
    loadgenCpuPct: round1(report.windowShare * 100),
    loadgenCrowdCpuPct: round1(report.crowdShare * 100),
    loadgenSaturated: Math.max(report.windowShare, report.crowdShare) >= LOADGEN_SATURATED,
    tcp: run.tcp,
    otherCpuPct: round1((otherS / sampledS) * 100),
    softirqCpuPct: round1(((m1.softirqS - m0.softirqS) / sampledS) * 100),
    windowS: report.windowS,
    windowWallMs: run.windowWallMs,
    details: { ...details, status: report.status, burstBytes: report.burstBytes, timedOut: report.timedOut, laggards: report.laggards },
  };
  if (run.pubAfter.perPid.size > 0) result.publisherCpuPct = round1((publisherS / sampledS) * 100);
  if (run.reported['latencyMs'] !== undefined) result.latencyMs = run.reported['latencyMs'];
  if (report.markers.length > 0) result.markers = report.markers;
  return result;
}

/** `players` split over `n` processes, as evenly as can be. */
function shares(players: number, n: number): number[] {
  const k = Math.max(1, Math.min(n, players));
  return Array.from({ length: k }, (_, i) => Math.floor(players / k) + (i < players % k ? 1 : 0));
}

/**
 * Runs the load generators (all at once, the players split between them), sampling the server
 * (and its publisher) as the first one's window opens and closes, and the kernel's TCP counters
 * around the whole run.
 */
function runLoad(server: ServerUnderTest, players: number, s: FanoutSettings): Promise<LoadRun> {
  const tcpBefore = tcpCounters();
  const gens = shares(players, s.loadgens).map((n) =>
    spawnTracked(
      process.execPath,
      [LOADGEN, '--url', server.url, '--players', String(n), '--join-ms', String(s.joinMs),
        '--duration-s', String(s.durationS), '--rate-bps', String(Math.round(s.rateBps)),
        ...(s.streams !== undefined && s.streams > 1 ? ['--streams', String(s.streams)] : []),
        ...(s.sampled ? ['--sampled', String(Math.ceil((s.sampled * n) / players))] : []),
        ...(s.nextPath !== undefined ? ['--next-path', s.nextPath] : [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ),
  );
  const stdout = gens.map(() => '');
  let errText = '';
  let before: TreeSample | null = null;
  let after: TreeSample | null = null;
  let pubBefore: TreeSample | null = null;
  let pubAfter: TreeSample | null = null;
  let machineBefore: MachineCpu = { busyS: 0, softirqS: 0 };
  let machineAfter: MachineCpu = { busyS: 0, softirqS: 0 };
  let selfBefore = process.cpuUsage();
  let selfS = 0;
  let reported: Promise<Record<string, unknown>> = Promise.resolve({});
  const windowWallMs = { start: 0, end: 0 };
  let peakRssBytes = 0;
  let windowRss = { sum: 0, n: 0 };
  const poll = setInterval(() => {
    const rss = sample(server.serverPids()).rssBytes;
    peakRssBytes = Math.max(peakRssBytes, rss);
    if (before !== null && after === null) windowRss = { sum: windowRss.sum + rss, n: windowRss.n + 1 };
  }, RSS_POLL_MS);
  const limit = setTimeout(() => gens.forEach((g) => void stopChild(g, 1000)), s.joinMs + s.durationS * 1000 + LOADGEN_GRACE_MS);
  const onMarker = (line: string): void => {
    if (line === 'loadgen: window start') {
      windowWallMs.start = performance.timeOrigin + performance.now();
      machineBefore = machineCpu();
      selfBefore = process.cpuUsage();
      before = sample(server.serverPids());
      pubBefore = sample(server.publisherPids());
    } else if (line === 'loadgen: window end') {
      windowWallMs.end = performance.timeOrigin + performance.now();
      after = sample(server.serverPids());
      pubAfter = sample(server.publisherPids());
      machineAfter = machineCpu();
      const self = process.cpuUsage(selfBefore);
      selfS = (self.user + self.system) / 1e6;
      reported = server.windowEnd().catch(() => ({}));
    }
  };
  const closed = gens.map(
    (gen, i) =>
      new Promise<number | null>((resolve, reject) => {
        gen.once('error', reject);
        gen.once('close', resolve);
        gen.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout[i] += text));
        createInterface({ input: gen.stderr! }).on('line', (line) => {
          // The first process's window stands for all: they start together and run as long.
          if (line.startsWith('loadgen: window ')) {
            if (i === 0) onMarker(line);
          } else errText = (errText + line + '\n').slice(-4000);
        });
      }),
  );
  const done = Promise.all(closed).finally(() => {
    clearInterval(poll);
    clearTimeout(limit);
  });
  return done.then(async (codes) => {
    const tcp = tcpDelta(tcpBefore, tcpCounters());
    const lines = stdout.map((text) => text.trim().split('\n').at(-1) ?? '');
    if (before === null || after === null || pubBefore === null || pubAfter === null || lines.includes('')) {
      throw new Error(`loadgen failed (exit ${codes.join(', ')}): ${errText}`);
    }
    const report = mergeReports(lines.map((line) => JSON.parse(line) as LoadReport));
    const windowRssBytes = windowRss.n > 0 ? windowRss.sum / windowRss.n : (after as TreeSample).rssBytes;
    const samples = { before, after, pubBefore, pubAfter, machineBefore, machineAfter, selfS, windowRssBytes };
    return { report, tcp, ...samples, peakRssBytes, windowWallMs, reported: await reported };
  });
}
