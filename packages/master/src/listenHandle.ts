import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { LISTEN_BACKLOG, MkvcastError, createServerHandle, type TcpHandle } from '@mkvcast/shared/control-plane';

/**
 * A bound TCP socket that the master owns and never accepts on: each edge
 * listens on a copy of it and accepts its own players, so a crowd joining at
 * once is not serialised through the master's IPC channel (one socket hand-off
 * per round trip). The kernel spreads connections over the edges that are
 * ready to accept; a full edge hands a connection back to the master.
 */
export async function bindPublicSocket(host: string, port: number): Promise<{ handle: TcpHandle; address: net.AddressInfo }> {
  const address = net.isIP(host) ? host : (await lookup(host)).address;
  const family = net.isIPv6(address) ? 6 : 4;
  const handle = createServerHandle(address, port, family);
  const fail = (code: number): never => {
    const name = getSystemErrorName(code);
    const why = name === 'EADDRINUSE' ? 'address already in use' : name === 'EACCES' ? 'permission denied' : name;
    throw new MkvcastError('MKV_ERR_LISTEN', `cannot listen on ${host}:${port}: ${why}`);
  };
  if (typeof handle === 'number') return fail(handle);
  const out: { address?: string; port?: number; family?: string } = {};
  // libuv defers a bind error until the next call on the socket.
  const err = handle.getsockname(out);
  if (err !== 0) {
    handle.close();
    return fail(err);
  }
  return { handle, address: { address: out.address!, port: out.port!, family: out.family ?? `IPv${family}` } };
}

/** A Linux sysctl as a number; null where there is none (another OS) or it cannot be read. */
export function readSysctl(name: string): number | null {
  try {
    const n = Number(readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * The accept queue the edges' listen() gets, and, when net.core.somaxconn
 * cuts LISTEN_BACKLOG down, the line that says so (the kernel does it silently).
 */
export function listenBacklog(somaxconn = readSysctl('net.core.somaxconn')): { backlog: number; note: string | null } {
  if (somaxconn === null || somaxconn >= LISTEN_BACKLOG) return { backlog: LISTEN_BACKLOG, note: null };
  return {
    backlog: somaxconn,
    note: `listen backlog ${somaxconn}: capped by net.core.somaxconn (${LISTEN_BACKLOG} asked for)`,
  };
}
