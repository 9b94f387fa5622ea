// `npm run bench`: serve a looped ~500 kbit/s VP8+Opus WebM through mkvcast (the real master and
// its edges) and, with --vs icecast, through Icecast 2.4 fed by ffmpeg, load each with the same
// flash crowd from the load generator, and report delivery, CPU, memory and time to first byte
// side by side. `npm run bench -- --ingest` measures ingest and IPC speed instead (ingest.ts).
// `npm run bench -- --latency` measures end-to-end latency from a publisher's write (latency.ts).
// `npm run bench -- --idle` measures the idle memory of master, source and edges (idle.ts).
// Options: see options.ts.
//
// Each (server, player count) gets a fresh server, so one run's leftovers do not weigh on the
// next; servers run one at a time, on 127.0.0.1. Prints one JSON line per run on stdout, then
// the tables and one summary JSON line. Exit 0 unless an mkvcast run failed (1), the options are
// wrong (64) or the hard timeout struck (2). A missing Icecast is reported, not an error.
import { stat } from 'node:fs/promises';
import { ffmpegPath, makeClip, probe } from '../test/helpers/media.js';
import { installSafetyNet } from './children.js';
import { measureFanout } from './fanout.js';
import type { FanoutResult } from './fanout.js';
import { startIcecast } from './icecast.js';
import { icecastSupport } from './icecastConfig.js';
import type { Support } from './icecastConfig.js';
import { runIdleBench } from './idle.js';
import { runIngestBench } from './ingest.js';
import { LATENCY_LEGEND, latencyMedians, latencyTable, mediansTable, runLatencyBench } from './latency.js';
import { clientsPerEdgeFor, startMkvcast } from './mkvcast.js';
import { parseOptions, UsageError } from './options.js';
import type { FanoutOptions, Options } from './options.js';
import { disturbed, LEGEND, ratiosOf, ratioTable, runTable, saturated } from './report.js';
import type { Summary } from './report.js';
import type { FanoutSettings, ServerName, ServerUnderTest } from './server.js';

const CLIP_SECONDS = 30;
/** Worst case per run: start (30 s) + warm-up + crowd + window + load generator grace + stop. */
const RUN_OVERHEAD_S = 30 + 60 + 30;
const SETUP_S = 300;

async function streamRate(o: FanoutOptions, clip: string): Promise<number> {
  // The clip's bytes over its length (headers and Cues are noise).
  const bits = (await stat(clip)).size * 8;
  if (o.clip === null) return bits / CLIP_SECONDS;
  const p = await probe(clip);
  if (p.firstPtsS === null || p.lastPtsS === null || p.lastPtsS <= p.firstPtsS) {
    throw new Error(`cannot tell the duration of ${clip}: ${p.errors}`);
  }
  return bits / (p.lastPtsS - p.firstPtsS);
}

async function startServer(name: ServerName, o: FanoutOptions, clip: string, players: number, icecast: Support): Promise<ServerUnderTest> {
  if (name === 'mkvcast') {
    const { master, edges, clientsPerEdge, streams, verbose } = o;
    return startMkvcast({ master, clip, streams, edges, clientsPerEdge, players, verbose });
  }
  if (!icecast.ok) throw new Error(icecast.reason);
  return startIcecast({ bin: icecast.bin, shareDir: icecast.shareDir, ffmpeg: ffmpegPath, clip, players, verbose: o.verbose });
}

async function runOne(name: ServerName, o: FanoutOptions, clip: string, players: number, s: FanoutSettings, icecast: Support): Promise<FanoutResult> {
  const server = await startServer(name, o, clip, players, icecast);
  try {
    const details = name === 'mkvcast' ? { edges: o.edges, clientsPerEdge: clientsPerEdgeFor({ ...o, players }), streams: o.streams } : {};
    return await measureFanout(server, players, s, details);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${server.tail()}`);
  } finally {
    await server.stop();
  }
}

async function runFanoutBench(o: FanoutOptions): Promise<number> {
  let icecast: Support = { ok: false, reason: 'not asked for' };
  if (o.vs === 'icecast') {
    icecast = await icecastSupport(ffmpegPath, o.icecastBin);
    if (!icecast.ok) process.stderr.write(`bench: Icecast NOT measured: ${icecast.reason}. Measuring mkvcast alone.\n`);
  }
  const servers: ServerName[] = icecast.ok ? ['mkvcast', 'icecast'] : ['mkvcast'];
  const clip = o.clip ?? (await makeClip('webm-vp8-opus', { seconds: CLIP_SECONDS }));
  const rateBps = await streamRate(o, clip);
  process.stderr.write(`bench: clip ${clip} (${Math.round(rateBps / 1000)} kbit/s${o.streams > 1 ? `, ${o.streams} streams` : ''}); servers: ${servers.join(', ')}\n`);
  if (o.latency !== null) return latencyBench(o, clip, rateBps, icecast);
  const s: FanoutSettings = { joinMs: o.joinMs, durationS: o.durationS, warmupS: o.warmupS, rateBps, loadgens: o.loadgens, streams: o.streams, verbose: o.verbose };

  const rows: FanoutResult[] = [];
  const failed: Summary['failed'] = [];
  for (const players of o.players) {
    for (const name of servers) {
      process.stderr.write(`bench: ${name}, ${players} players, ${o.durationS} s window\n`);
      try {
        const row = await runOne(name, o, clip, players, s, icecast);
        rows.push(row);
        process.stdout.write(`${JSON.stringify({ type: 'run', ...row })}\n`);
      } catch (err) {
        const error = (err as Error).message;
        failed.push({ server: name, players, error: error.split('\n')[0]! });
        process.stderr.write(`bench: ${name} at ${players} players failed: ${error}\n`);
        process.stdout.write(`${JSON.stringify({ type: 'run', server: name, players, error })}\n`);
      }
    }
  }
  printSummary(o, rows, failed, icecast);
  return failed.some((f) => f.server === 'mkvcast') ? 1 : 0;
}

async function latencyBench(o: FanoutOptions, clip: string, rateBps: number, icecast: Support): Promise<number> {
  const { rows, failed } = await runLatencyBench(o, { clip, rateBps, icecast });
  let text = rows.length > 0 ? `\n${latencyTable(rows)}\n\n${LATENCY_LEGEND}\n` : '\n(no run completed)\n';
  const medians = o.latency!.rounds > 1 ? latencyMedians(rows) : [];
  if (medians.length > 0) text += `\nOver ${o.latency!.rounds} rounds, the servers taking turns:\n${mediansTable(medians)}\n`;
  if (o.vs !== null && !icecast.ok) text += `\nIcecast NOT measured: ${icecast.reason}\n`;
  for (const x of saturated(rows)) text += `\nWARNING: the load generator used ${x.cpuPct} % of a core in the ${x.server} run at ${x.players} players: it may be the bottleneck there.\n`;
  for (const x of disturbed(rows)) text += `\nWARNING: other processes used ${x.otherCpuPct} % of a core during the ${x.server} run at ${x.players} players: its figures are disturbed.\n`;
  for (const f of failed) text += `\nFAILED: ${f.server}${f.maxDelayMs === null ? '' : ` --max-delay ${f.maxDelayMs}`} at ${f.players} players: ${f.error}\n`;
  const summary = {
    type: 'summary', mode: 'latency', publisher: o.latency!.publisher, vs: icecast.ok ? 'icecast' : null,
    ...(icecast.ok ? {} : { vsSkipped: icecast.reason }), players: o.players, runs: rows.length, failed,
    ...(medians.length > 0 ? { rounds: o.latency!.rounds, medians } : {}),
  };
  process.stdout.write(`${text}\n${JSON.stringify(summary)}\n`);
  return failed.some((f) => f.server === 'mkvcast') ? 1 : 0;
}

function printSummary(o: FanoutOptions, rows: FanoutResult[], failed: Summary['failed'], icecast: Support): void {
  const ratios = ratiosOf(rows);
  const summary: Summary = {
    type: 'summary',
    vs: o.vs !== null && icecast.ok ? o.vs : null,
    players: o.players,
    runs: rows.length,
    failed,
    ratios,
    loadgenSaturated: saturated(rows),
    disturbed: disturbed(rows),
  };
  if (o.vs !== null && !icecast.ok) summary.vsSkipped = icecast.reason;
  let text = rows.length > 0 ? `\n${runTable(rows)}\n\n${LEGEND}\n` : '\n(no run completed)\n';
  if (ratios.length > 0) text += `\n${ratioTable(ratios)}\n`;
  if (summary.vsSkipped !== undefined) text += `\nIcecast NOT measured: ${summary.vsSkipped}\n`;
  for (const x of summary.loadgenSaturated) {
    text += `\nWARNING: a load generator used ${x.cpuPct} % of a core in the ${x.server} run at ${x.players} players: it may be the bottleneck there (try more --loadgens).\n`;
  }
  for (const x of summary.disturbed) {
    text += `\nWARNING: other processes used ${x.otherCpuPct} % of a core during the ${x.server} run at ${x.players} players: its figures are disturbed.\n`;
  }
  for (const f of failed) text += `\nFAILED: ${f.server} at ${f.players} players: ${f.error}\n`;
  process.stdout.write(`${text}\n${JSON.stringify(summary)}\n`);
}

function hardTimeoutMs(o: Options): number {
  if (o.mode === 'ingest') return (SETUP_S + 60 * o.runs * 3) * 1000;
  if (o.mode === 'idle') return (SETUP_S + (60 + o.settleS) * o.runs * 2) * 1000;
  const perRunS = RUN_OVERHEAD_S + o.warmupS + o.joinMs / 1000 + o.durationS;
  const servers = (o.latency?.maxDelays.length ?? 1) + (o.vs === null ? 0 : 1);
  return (SETUP_S + perRunS * o.players.length * servers * (o.latency?.rounds ?? 1)) * 1000;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err;
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 64;
  }
  const hard = installSafetyNet(hardTimeoutMs(o));
  try {
    if (o.mode === 'idle') return await runIdleBench(o);
    return o.mode === 'ingest' ? await runIngestBench(o) : await runFanoutBench(o);
  } finally {
    clearTimeout(hard);
  }
}

process.exitCode = await main();
