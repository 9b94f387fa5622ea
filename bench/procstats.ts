// CPU time and resident memory of a process tree, read from Linux /proc (proc(5)).
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of utime/stime; USER_HZ is 100 on every mainstream Linux build. */
const CLK_TCK = 100;

export interface ProcSample {
  pid: number;
  ppid: number;
  comm: string;
  /** Start time in clock ticks since boot: with the pid, identifies the process. */
  startTicks: number;
  /** utime + stime of all the process's threads, in seconds. */
  cpuS: number;
  rssBytes: number;
}

export interface TreeSample {
  /** When the sample was taken (performance.now(), ms). */
  atMs: number;
  cpuS: number;
  rssBytes: number;
  perPid: Map<number, ProcSample>;
}

function readOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null; // the process exited between listing and reading
  }
}

/** Fields of /proc/<pid>/stat; comm may hold spaces and parentheses, so split after the last ')'. */
function parseStat(text: string): { comm: string; fields: string[] } {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  return { comm: text.slice(open + 1, close), fields: text.slice(close + 2).split(' ') };
}

/** One process, or null if it does not exist (any more). */
export function readProc(pid: number): ProcSample | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const { comm, fields } = parseStat(stat);
  // fields[0] is stat field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
  const ppid = Number(fields[1]);
  const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const status = readOrNull(`/proc/${pid}/status`);
  const rss = status === null ? null : /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  const startTicks = Number(fields[19]);
  return { pid, ppid, comm, startTicks, cpuS, rssBytes: rss === null ? 0 : Number(rss[1]) * 1024 };
}

/** `root` (if alive) and every process below it, found through each process's ppid. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readOrNull(`/proc/${name}/stat`);
    if (stat === null) continue;
    const ppid = Number(parseStat(stat).fields[1]);
    let list = children.get(ppid);
    if (list === undefined) children.set(ppid, (list = []));
    list.push(Number(name));
  }
  if (readOrNull(`/proc/${root}/stat`) === null) return [];
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    found.push(pid);
    for (const child of children.get(pid) ?? []) queue.push(child);
  }
  return found;
}

/** Sums over the given processes; those that have exited are left out. */
export function sample(pids: readonly number[]): TreeSample {
  const perPid = new Map<number, ProcSample>();
  let cpuS = 0;
  let rssBytes = 0;
  for (const pid of pids) {
    const p = readProc(pid);
    if (p === null) continue;
    perPid.set(pid, p);
    cpuS += p.cpuS;
    rssBytes += p.rssBytes;
  }
  return { atMs: performance.now(), cpuS, rssBytes, perPid };
}

/** Samples `root` and its descendants as they are now. */
export function sampleTree(root: number): TreeSample {
  return sample(descendants(root));
}

/**
 * CPU seconds used between two samples. A process new in `after` counts from zero (it started
 * in between); one gone from `after` is lost, as its time can no longer be read.
 */
export function cpuDelta(before: TreeSample, after: TreeSample): number {
  let total = 0;
  for (const [pid, p] of after.perPid) {
    const prev = before.perPid.get(pid);
    total += prev === undefined || prev.startTicks !== p.startTicks ? p.cpuS : Math.max(0, p.cpuS - prev.cpuS);
  }
  return total;
}

export interface MachineCpu {
  /** Seconds all cores spent busy since boot: everything but idle, iowait and softirq. */
  busyS: number;
  /**
   * Seconds in softirq, apart: loopback TCP delivery runs there and is charged to no process,
   * so it belongs to whoever moves the bytes, not to the machine's other users.
   */
  softirqS: number;
}

/** The machine's CPU time so far, from the first line of /proc/stat. */
export function machineCpu(): MachineCpu {
  const line = readOrNull('/proc/stat')?.split('\n', 1)[0] ?? '';
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return { busyS: 0, softirqS: 0 };
  return { busyS: (f[0]! + f[1]! + f[2]! + f[5]! + f[7]!) / CLK_TCK, softirqS: f[6]! / CLK_TCK };
}

/**
 * TCP counters of the kernel (TcpExt in /proc/net/netstat) that tell whether a crowd's
 * connections were turned away at the listening socket: the evidence that does not depend
 * on how busy the machine was. They count the whole network namespace, so other loopback
 * traffic on the machine adds to them.
 */
export interface TcpCounters {
  /** Handshakes dropped because the listener's accept queue was full. */
  listenOverflows: number;
  /** Every drop at a listener, overflows included. */
  listenDrops: number;
  /** SYN and SYN-ACK retransmissions: what a dropped SYN costs its client (1 s, then 3 s). */
  synRetrans: number;
  /** SYN queue full: answered with a SYN cookie (net.ipv4.tcp_syncookies on), or dropped. */
  reqQFullDoCookies: number;
  reqQFullDrop: number;
}

const TCP_COUNTERS: Record<keyof TcpCounters, string> = {
  listenOverflows: 'ListenOverflows',
  listenDrops: 'ListenDrops',
  synRetrans: 'TCPSynRetrans',
  reqQFullDoCookies: 'TCPReqQFullDoCookies',
  reqQFullDrop: 'TCPReqQFullDrop',
};

/** The counters now, or null where /proc/net/netstat cannot be read. */
export function tcpCounters(): TcpCounters | null {
  // Two lines per group: "TcpExt: Name1 Name2 …", then "TcpExt: value1 value2 …".
  const lines = (readOrNull('/proc/net/netstat') ?? '').split('\n').filter((l) => l.startsWith('TcpExt:'));
  if (lines.length < 2) return null;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/);
  const out = {} as TcpCounters;
  for (const [key, name] of Object.entries(TCP_COUNTERS) as [keyof TcpCounters, string][]) {
    const i = names.indexOf(name);
    out[key] = i < 0 ? 0 : Number(values[i]);
  }
  return out;
}

export function tcpDelta(before: TcpCounters | null, after: TcpCounters | null): TcpCounters | null {
  if (before === null || after === null) return null;
  const out = {} as TcpCounters;
  for (const key of Object.keys(TCP_COUNTERS) as (keyof TcpCounters)[]) out[key] = after[key] - before[key];
  return out;
}
