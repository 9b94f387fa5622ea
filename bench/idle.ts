// `npm run bench -- --idle`: the memory of an idle server. Starts the real master (source and
// edges with it) with no input, then with one looped input and no players, waits for its
// "listening" line and a settling time, and reads each process's Pss and private memory from
// /proc/PID/smaps_rollup (proc(5)). Several fresh servers per case; prints medians.
//
// PSS divides each shared page (the node binary's, above all) among every process that maps it,
// so it moves with the number of node processes on the machine: the bench counts them at each
// sample. The private figure does not move that way; nor does "alone": the server's resident
// pages counted once each across its processes (PFNs from /proc/PID/pagemap, root only), which
// is what its PSS would be if no other process shared a page with it (libc's and the node
// binary's pages included, so an upper bound).
import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sleep, spawnTracked, stopChild, tailOutput, watchStray, killStrays } from './children.js';
import { descendants } from './procstats.js';
import type { IdleOptions } from './options.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEMO_CLIP = `${REPO_ROOT}demo/demo.webm`;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
const KIB = 1024;
const MIB = 1024 * 1024;

type Role = 'master' | 'source' | 'edge' | 'other';

interface ProcMemory {
  pid: number;
  role: Role;
  pssBytes: number;
  privateBytes: number;
}

interface IdleRun {
  case: string;
  run: number;
  processes: ProcMemory[];
  pssBytes: number;
  privateBytes: number;
  /** node processes on the whole machine when sampled (theirs included): PSS's divisor. */
  nodeProcesses: number;
  /** Distinct resident pages of the server's processes, bytes; null without the right to read PFNs. */
  aloneBytes: number | null;
}

function readOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null; // exited in between
  }
}

function kib(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]) * KIB;
}

function roleOf(cmdline: string): Role {
  if (cmdline.includes('/packages/source/')) return 'source';
  if (cmdline.includes('/packages/edge/')) return 'edge';
  if (cmdline.includes('/packages/master/')) return 'master';
  return 'other';
}

function memoryOf(pid: number): ProcMemory | null {
  const rollup = readOrNull(`/proc/${pid}/smaps_rollup`);
  const cmdline = readOrNull(`/proc/${pid}/cmdline`);
  if (rollup === null || cmdline === null) return null;
  return {
    pid,
    role: roleOf(cmdline.replaceAll('\0', ' ')),
    pssBytes: kib(rollup, 'Pss'),
    privateBytes: kib(rollup, 'Private_Clean') + kib(rollup, 'Private_Dirty'),
  };
}

const PAGE = 4096;
/** pagemap entries read at once (8 bytes each). */
const PAGEMAP_BATCH = 4096;

/**
 * The physical pages each process has resident (proc(5), /proc/PID/pagemap: bit 63 present,
 * bits 0–54 the PFN, zero unless the reader has CAP_SYS_ADMIN), added to `pages`. False when
 * the PFNs cannot be read.
 */
function addPages(pid: number, pages: Set<number>): boolean {
  const smaps = readOrNull(`/proc/${pid}/smaps`);
  if (smaps === null) return true; // exited in between
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/pagemap`, 'r');
  } catch {
    return false;
  }
  const buf = Buffer.alloc(PAGEMAP_BATCH * 8);
  let sawPfn = false;
  try {
    let range: [number, number] | null = null;
    for (const line of smaps.split('\n')) {
      const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
      if (head !== null) range = [parseInt(head[1]!, 16) / PAGE, parseInt(head[2]!, 16) / PAGE];
      const rss = /^Rss:\s+(\d+) kB/.exec(line);
      if (rss === null || range === null || rss[1] === '0') continue;
      for (let page = range[0]; page < range[1]; page += PAGEMAP_BATCH) {
        const n = Math.min(PAGEMAP_BATCH, range[1] - page);
        const got = readSync(fd, buf, 0, n * 8, page * 8) / 8;
        for (let i = 0; i < got; i++) {
          const hi = buf.readUInt32LE(i * 8 + 4);
          if ((hi & 0x80000000) === 0) continue;
          const pfn = (hi & 0x7fffff) * 2 ** 32 + buf.readUInt32LE(i * 8);
          if (pfn !== 0) sawPfn = true;
          pages.add(pfn);
        }
      }
      range = null;
    }
  } catch {
    return false; // a range unmapped in between, or no right to read
  } finally {
    closeSync(fd);
  }
  return sawPfn;
}

function aloneBytes(pids: number[]): number | null {
  const pages = new Set<number>();
  for (const pid of pids) if (!addPages(pid, pages)) return null;
  return pages.size * PAGE;
}

function nodeProcesses(): number {
  let n = 0;
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name) && readOrNull(`/proc/${name}/comm`)?.trim() === 'node') n++;
  }
  return n;
}

/** Resolves when the master says it listens; rejects if it exits or stays silent. */
function listening(child: ReturnType<typeof spawnTracked>): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.includes('listening on http')) done();
    });
    child.once('exit', (code, signal) => done(new Error(`master exited (${code ?? signal})`)));
  });
}

async function oneRun(o: IdleOptions, name: string, input: string[], run: number): Promise<IdleRun> {
  const args = [o.master, ...input, '--edges', String(o.edges), '--port', '0', '--host', '127.0.0.1'];
  const child = spawnTracked(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const up = listening(child);
  const tail = tailOutput(child, 4000, o.verbose ? (line) => process.stderr.write(`[mkvcast] ${line}\n`) : undefined);
  try {
    await up;
    await sleep(o.settleS * 1000);
    const pids = descendants(child.pid!);
    const processes = pids.map(memoryOf).filter((p): p is ProcMemory => p !== null);
    const sum = (f: (p: ProcMemory) => number): number => processes.reduce((a, p) => a + f(p), 0);
    return {
      case: name, run, processes, pssBytes: sum((p) => p.pssBytes), privateBytes: sum((p) => p.privateBytes),
      nodeProcesses: nodeProcesses(), aloneBytes: aloneBytes(pids),
    };
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- mkvcast output ---\n${tail()}`);
  } finally {
    for (const p of descendants(child.pid!)) watchStray(p);
    await stopChild(child, STOP_GRACE_MS);
    killStrays();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

/** Per role (the edges summed), then the total: median [min–max] of PSS and private, MiB. */
function table(runs: IdleRun[]): string {
  const rows: string[][] = [['process', 'PSS MiB median [min–max]', 'private MiB median [min–max]']];
  const line = (label: string, pick: (r: IdleRun) => ProcMemory[]): void => {
    const pss = runs.map((r) => pick(r).reduce((a, p) => a + p.pssBytes, 0));
    const priv = runs.map((r) => pick(r).reduce((a, p) => a + p.privateBytes, 0));
    if (pss.every((v) => v === 0)) return;
    const cell = (v: number[]): string => `${mib(median(v))} [${mib(Math.min(...v))}–${mib(Math.max(...v))}]`;
    rows.push([label, cell(pss), cell(priv)]);
  };
  const roles: Role[] = ['master', 'source', 'edge', 'other'];
  for (const role of roles) line(role === 'edge' ? 'edges' : role, (r) => r.processes.filter((p) => p.role === role));
  line('TOTAL', (r) => r.processes);
  const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(width[i]!)).join('  ')).join('\n');
}

export async function runIdleBench(o: IdleOptions): Promise<number> {
  const cases: [string, string[]][] = [
    ['no input', []],
    [`one looped input, no players`, [o.input ?? DEMO_CLIP, '--loop', '--name', 'idle']],
  ];
  let text = '';
  const summary: Record<string, { pssMiB: number; privateMiB: number; aloneMiB: number | null; runs: number }> = {};
  for (const [name, input] of cases) {
    const runs: IdleRun[] = [];
    for (let i = 0; i < o.runs; i++) {
      process.stderr.write(`bench: idle, ${name}, run ${i + 1}/${o.runs}\n`);
      const r = await oneRun(o, name, input, i + 1);
      runs.push(r);
      process.stdout.write(`${JSON.stringify({ type: 'idle-run', ...r })}\n`);
    }
    const nodes = runs.map((r) => r.nodeProcesses);
    const alone = runs.map((r) => r.aloneBytes).filter((b): b is number => b !== null);
    const aloneMiB = alone.length === runs.length ? Number(mib(median(alone))) : null;
    text += `\n${name} (master --edges ${o.edges}, ${o.settleS} s after "listening", ${o.runs} runs; node processes on the machine: ${Math.min(...nodes)}–${Math.max(...nodes)})\n${table(runs)}\n`;
    text += aloneMiB === null ? 'alone: not measured (reading PFNs from /proc/PID/pagemap needs root)\n'
      : `alone (resident pages counted once, as PSS would be with no other process): ${aloneMiB} MiB median [${mib(Math.min(...alone))}–${mib(Math.max(...alone))}]\n`;
    summary[name] = {
      pssMiB: Number(mib(median(runs.map((r) => r.pssBytes)))), privateMiB: Number(mib(median(runs.map((r) => r.privateBytes)))), aloneMiB, runs: runs.length,
    };
  }
  process.stdout.write(`${text}\n${JSON.stringify({ type: 'summary', mode: 'idle', cases: summary })}\n`);
  return 0;
}
