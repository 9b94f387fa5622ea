// What the soak reads about mkvcast's processes from Linux /proc (proc(5)): memory, parentage,
// and which process holds the server's end of a player's TCP connection.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readProc } from './procstats.js';

export interface Memory {
  rssBytes: number;
  /** Proportional set size: shared pages split between the processes that map them. */
  pssBytes: number;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null; // gone, or not ours to read
  }
}

/** RSS and PSS of a process, or null when it does not exist. */
export function memoryOf(pid: number): Memory | null {
  const p = readProc(pid);
  if (p === null) return null;
  const pss = /^Pss:\s+(\d+)\s+kB/m.exec(read(`/proc/${pid}/smaps_rollup`) ?? '');
  return { rssBytes: p.rssBytes, pssBytes: pss === null ? 0 : Number(pss[1]) * 1024 };
}

/** Whether `pid` is alive and a child of `parent` (so not a reused pid of another process). */
export function isChildOf(pid: number, parent: number): boolean {
  return readProc(pid)?.ppid === parent;
}

/** Port as /proc/net/tcp writes it: four hex digits. */
const hexPort = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');

/**
 * The process, among `candidates`, that holds the server side of the loopback connection from
 * `clientPort` to `serverPort`: the socket's inode from /proc/net/tcp, then each candidate's
 * fds (which link to `socket:[inode]`). Null when none holds it (yet).
 */
export function holderOf(serverPort: number, clientPort: number, candidates: readonly number[]): number | null {
  const local = `:${hexPort(serverPort)}`;
  const remote = `:${hexPort(clientPort)}`;
  let inode: string | undefined;
  for (const line of (read('/proc/net/tcp') ?? '').split('\n').slice(1)) {
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(local) && f[2]?.endsWith(remote) && f[9] !== '0') inode = f[9];
  }
  if (inode === undefined) return null;
  const target = `socket:[${inode}]`;
  for (const pid of candidates) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        // closed in between
      }
    }
  }
  return null;
}
