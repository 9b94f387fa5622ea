import net from 'node:net';
import type { Socket } from 'node:net';
import { MkvcastError } from './errors.js';

/**
 * The two Node internals mkvcast relies on, in one place, with a check run
 * once at start-up: a Node that renames them fails there with a clear line,
 * not later on the first hand-off or at listen.
 *
 * - `net._createServerHandle`: how Node's cluster module makes a listening
 *   handle to share (lib/internal/cluster/shared_handle.js); the master
 *   binds the public port with it and never accepts on it.
 * - the libuv handle's `readStop()`: how net.Socket#pause stops libuv reading
 *   ahead; a socket about to move to another process must stop reading for good.
 */

/** The part of libuv's TCP handle mkvcast uses. */
export interface TcpHandle {
  getsockname(out: { address?: string; port?: number; family?: string }): number;
  readStop(): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => TcpHandle | number;

/** A bound (not listening) TCP handle, or a negative libuv error number. */
export function createServerHandle(address: string, port: number, family: 4 | 6): TcpHandle | number {
  return (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle(address, port, family, undefined, 0);
}

/** Stops libuv reading a socket (net.Socket#pause does not, past the high-water mark). */
export function stopHandleReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { reading: boolean; readStop(): number } })._handle;
  if (handle) {
    handle.reading = false;
    handle.readStop();
  }
}

/** Throws MKV_ERR_START, naming this Node, when an internal above is missing. */
export function checkNodeInternals(): void {
  const fail = (what: string): never => {
    throw new MkvcastError('MKV_ERR_START', `this Node (${process.version}) lacks ${what}, which mkvcast needs; use Node 20 or 22`);
  };
  const create = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
  if (typeof create !== 'function') fail('net._createServerHandle');
  // A socket has its handle only once connected; a server handle is the same TCP class.
  const handle = createServerHandle('127.0.0.1', 0, 4);
  // No loopback to bind: nothing to look at here, and listening will say what is wrong.
  if (typeof handle === 'number') return;
  const readStop = typeof handle.readStop;
  handle.close();
  if (readStop !== 'function') fail('readStop() on TCP handles');
}
