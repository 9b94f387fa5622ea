// The soak's findings: memory per process per minute, long-running players lost and why, decode
// errors in what they recorded, and the churn's counts. Prints tables on stdout, then one JSON
// line; returns the exit code.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { clusterOffsets } from '../test/helpers/ingest.js';
import type { LongRecord, PublisherCounts, ShortCounts } from './soakClients.js';
import type { Memory } from './soakProc.js';

export type Role = 'master' | 'source' | `edge ${number}`;

export interface Kill {
  atMs: number;
  what: string;
  pid: number;
}

export interface MemoryRow {
  atMs: number;
  /** 'idle': after the clients left. */
  label?: string;
  /** Players and streams, by /stats. */
  players: number | null;
  streams: number | null;
  cells: { role: Role; pid: number | null; memory: Memory | null }[];
}

export interface ReportInput {
  minutes: number;
  /** When the soak cut its own players. */
  cutAtMs: number;
  kills: Kill[];
  rows: MemoryRow[];
  roles: Map<number, Role>;
  /** Every long-running player started, those that did not get a 200 included. */
  long: LongRecord[];
  publishers: PublisherCounts;
  shorts: ShortCounts;
  ffmpeg: string;
  stoppedCleanly: boolean;
}

/** A player closed this long after a source kill is counted as closed by it. */
const SOURCE_KILL_WINDOW_MS = 15_000;
const DECODE_TIMEOUT_MS = 300_000;
/** What ffmpeg says about a file that simply stops: not an error in the stream. */
const CUT_TAIL = /\] Read error$|File ended prematurely/;

type Cause = 'edge kill' | 'source kill' | 'other';

const mmss = (ms: number): string => `${Math.floor(ms / 60_000)}:${(ms / 1000 % 60).toFixed(1).padStart(4, '0')}`;
const mb = (bytes: number): string => (bytes / 1048576).toFixed(0);

/** Why a long-running player's connection ended: its edge was killed, the source was, or neither. */
function causeOf(r: LongRecord, kills: Kill[], roles: Map<number, Role>): { cause: Cause; detail: string } {
  const at = r.lost!.atMs;
  const on = r.servedBy === null ? 'serving process not found' : `on ${roles.get(r.servedBy) ?? 'pid'} ${r.servedBy}`;
  const edge = kills.find((k) => k.pid === r.servedBy && k.atMs <= at);
  if (edge) return { cause: 'edge kill', detail: `${on}, SIGKILLed at ${mmss(edge.atMs)}` };
  const source = kills.filter((k) => k.what === 'source' && k.atMs <= at && at - k.atMs <= SOURCE_KILL_WINDOW_MS).pop();
  if (source) return { cause: 'source kill', detail: `${on}, ${((at - source.atMs) / 1000).toFixed(1)} s after the source kill at ${mmss(source.atMs)}` };
  return { cause: 'other', detail: on };
}

/** "1.2 s after the source kill at 0:45.0", for a publisher cut short. */
function nearestKill(at: number, kills: Kill[]): string {
  const k = kills.filter((x) => x.atMs <= at).pop();
  return k ? `${((at - k.atMs) / 1000).toFixed(1)} s after the ${k.what} kill at ${mmss(k.atMs)}` : 'before any kill';
}

interface DecodeResult {
  lines: number;
  /** Kinds of message (numbers and addresses blanked) with their counts, the first few. */
  kinds: Map<string, number>;
}

/** ffmpeg's error lines for a recording, up to its last whole Cluster (the cut tail is not the stream's fault). */
async function decodeErrors(ffmpeg: string, file: string): Promise<DecodeResult> {
  const result: DecodeResult = { lines: 0, kinds: new Map() };
  const buf = await readFile(file);
  let end = buf.length;
  try {
    end = clusterOffsets(buf).filter((c) => c.end <= buf.length).pop()?.end ?? 0;
  } catch {
    // Not parseable as sized Clusters: decode it all and let CUT_TAIL drop the tail's complaint.
  }
  if (end === 0) return result;
  const child = spawn(ffmpeg, ['-nostdin', '-v', 'error', '-i', 'pipe:0', '-f', 'null', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line === '' || CUT_TAIL.test(line)) return;
    result.lines++;
    const kind = line.replace(/0x[0-9a-f]+/g, '…').replace(/-?\d+/g, '#');
    if (result.kinds.has(kind) || result.kinds.size < 5) result.kinds.set(kind, (result.kinds.get(kind) ?? 0) + 1);
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(buf.subarray(0, end));
  const timer = setTimeout(() => child.kill('SIGKILL'), DECODE_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  if (code !== 0 && result.lines === 0) {
    result.lines = 1;
    result.kinds.set(`ffmpeg exited ${code}`, 1);
  }
  return result;
}

function printMemory(r: ReportInput): void {
  const roles = r.rows[0]?.cells.map((c) => c.role) ?? [];
  console.log('\nmemory, MB RSS/PSS (* restarted since the row above)');
  console.log(['t', 'players', 'streams', ...roles].map((s) => s.padEnd(10)).join('').trimEnd());
  const last = new Map<Role, number | null>();
  for (const row of r.rows) {
    const cells = row.cells.map((c) => {
      const restarted = last.has(c.role) && last.get(c.role) !== c.pid ? '*' : '';
      last.set(c.role, c.pid);
      return c.memory === null ? '-' : `${mb(c.memory.rssBytes)}/${mb(c.memory.pssBytes)}${restarted}`;
    });
    const head = [row.label ?? mmss(row.atMs), String(row.players ?? '?'), String(row.streams ?? '?')];
    console.log([...head, ...cells].map((s) => s.padEnd(10)).join('').trimEnd());
  }
}

export async function printReport(r: ReportInput): Promise<number> {
  console.log(`\nsoak: ${r.minutes} min`);
  console.log(`kills: ${r.kills.map((k) => `${mmss(k.atMs)} ${k.what} (pid ${k.pid})`).join(', ') || 'none'}`);
  printMemory(r);

  const played = r.long.filter((p) => p.status === 200);
  const lost = played.filter((p) => p.lost !== null).map((p) => ({ p, ...causeOf(p, r.kills, r.roles) }));
  const count = (cause: Cause): number => lost.filter((l) => l.cause === cause).length;
  const healthyLost = lost.length - count('edge kill');
  console.log(`\nlong-running players: ${played.length} played (${r.long.length - played.length} failed to start), ${lost.length} lost before the end at ${mmss(r.cutAtMs)}`);
  console.log(`  on a killed edge (unavoidable): ${count('edge kill')}`);
  console.log(`  healthy players lost: ${healthyLost} (closed at a source kill: ${count('source kill')}, other: ${count('other')}) — must be 0`);
  for (const l of lost) console.log(`    ${l.p.name} at ${mmss(l.p.lost!.atMs)}: ${l.cause}; ${l.p.lost!.how}; ${l.detail}`);

  console.log('\ndecode errors in the recordings (each cut at its last whole Cluster)');
  let decodeTotal = 0;
  const decode: Record<string, number> = {};
  const kinds = new Map<string, number>();
  for (const p of played) {
    const d = p.bytes > 0 ? await decodeErrors(r.ffmpeg, p.file) : { lines: 0, kinds: new Map<string, number>() };
    decode[p.name] = d.lines;
    decodeTotal += d.lines;
    for (const [kind, n] of d.kinds) kinds.set(kind, (kinds.get(kind) ?? 0) + n);
    const life = `${mmss(p.startedAtMs)}–${mmss(p.lost?.atMs ?? r.cutAtMs)}`;
    const on = p.servedBy === null ? '?' : (r.roles.get(p.servedBy) ?? String(p.servedBy));
    console.log(`  ${p.name.padEnd(4)} ${on.padEnd(7)} ${life.padEnd(16)} ${mb(p.bytes).padStart(4)} MB  ${d.lines} error line(s)`);
  }
  for (const [kind, n] of kinds) console.log(`    ${String(n).padStart(6)}× ${kind.slice(0, 160)}`);

  const pub = r.publishers;
  console.log(`\npublishers: ${pub.started} started, ${pub.finished} sent their clip, ${pub.killed} vanished (killed by the soak), ${pub.cut} cut short`);
  for (const c of pub.cuts) console.log(`    ${c.name} at ${mmss(c.atMs)}, ${nearestKill(c.atMs, r.kills)}: ${c.why}`);
  console.log(`short players: ${r.shorts.started} started, answers ${JSON.stringify(r.shorts.statuses)}, ${mb(r.shorts.bytes)} MB received`);
  if (!r.stoppedCleanly) console.log('the master ignored SIGTERM at the end and was killed');

  const ok = healthyLost === 0 && decodeTotal === 0 && r.stoppedCleanly;
  console.log(JSON.stringify({
    soak: { minutes: r.minutes, ok },
    kills: r.kills.map((k) => ({ atS: Math.round(k.atMs / 1000), what: k.what })),
    memoryMB: r.rows.map((row) => ({ t: row.label ?? Math.round(row.atMs / 1000), players: row.players, streams: row.streams, ...Object.fromEntries(row.cells.map((c) => [c.role, c.memory && { rss: +mb(c.memory.rssBytes), pss: +mb(c.memory.pssBytes) }])) })),
    longPlayers: { played: played.length, failedStarts: r.long.length - played.length, lostOnKilledEdge: count('edge kill'), healthyLost, atSourceKill: count('source kill'), other: count('other') },
    decodeErrors: { total: decodeTotal, perPlayer: decode },
    publishers: pub,
    shortPlayers: r.shorts,
  }));
  return ok ? 0 : 1;
}
