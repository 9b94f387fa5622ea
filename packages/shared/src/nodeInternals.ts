import net from 'node:net';
import type { Socket } from 'node:net';
import { MkvcastError } from './errors.js';

/**
 * The Node internals mkvcast relies on, in one place, with a check run
 * once at start-up: a Node that renames them fails there with a clear line,
 * not later on the first hand-off or at listen. (The direct writes below
 * need no check: without their internals, sockets are written as usual.)
 *
 * - `net._createServerHandle`: how Node's cluster module makes a listening
 *   handle to share (lib/internal/cluster/shared_handle.js); the master
 *   binds the public port with it and never accepts on it.
 * - the libuv handle's `readStop()`: how net.Socket#pause stops libuv reading
 *   ahead; a socket about to move to another process must stop reading for good,
 *   and a live input read once per --max-delay window stops between windows
 *   (`readStart()` again at the next).
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

/** Starts libuv reading a socket again after stopHandleReading, as net.Socket does when it wants data. */
export function startHandleReading(socket: Socket): void {
  const handle = (socket as unknown as { _handle?: { reading: boolean; readStart(): number } | null })._handle;
  if (!handle || handle.reading || socket.destroyed) return;
  handle.reading = true;
  const err = handle.readStart();
  if (err) socket.destroy(new Error(`read failed (libuv error ${err})`));
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

/** libuv's stream handle, as far as a write to it goes. */
interface StreamHandle {
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  /** Bytes libuv has queued that the kernel has not taken. */
  readonly writeQueueSize: number;
}

/** Node's write request: the handle calls `oncomplete` when a write it could not finish at once is done. */
interface WriteReq {
  oncomplete?: (this: WriteReq, status: number) => void;
  buffer?: Uint8Array | null;
  socket?: Socket | null;
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
}

function streamWrapBinding(): StreamWrapBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (typeof binding.WriteWrap === 'function' && binding.streamBaseState instanceof Int32Array && typeof binding.kLastWriteWasAsync === 'number') {
      return binding as StreamWrapBinding;
    }
  } catch {
    // A Node without it: sockets are written through their streams.
  }
  return null;
}

function handleOf(socket: Socket): StreamHandle | null {
  const handle = (socket as unknown as { _handle?: Partial<StreamHandle> | null })._handle;
  // `in`, not a read: writeQueueSize is a getter into C++, and this runs once per player write.
  return handle && typeof handle.writeBuffer === 'function' && 'writeQueueSize' in handle ? (handle as StreamHandle) : null;
}

/** Bytes written to a socket that the kernel has not taken yet: the stream's buffer and libuv's queue. */
export function unsentBytes(socket: Socket): number {
  return socket.writableLength + (handleOf(socket)?.writeQueueSize ?? 0);
}

function onDirectWriteComplete(this: WriteReq, status: number): void {
  const socket = this.socket;
  this.buffer = null;
  this.socket = null;
  if (status < 0 && socket && !socket.destroyed) socket.destroy(new Error(`write failed (libuv error ${status})`));
}

/**
 * Writes a Buffer to a connected socket's libuv handle, as net.Socket's own
 * write does at its end, without the Writable's bookkeeping around it (a
 * request object, callbacks, a tick per write). An edge makes tens of
 * thousands of these writes a second, one per player per batch: that
 * bookkeeping was about 40 % of the user-space time an edge spent per write
 * (`perf` on an edge at 1000 players). The kernel and libuv keep the order of
 * every write, direct or not; what libuv could not write at once stays queued
 * there (see unsentBytes), with its buffer held until done. A socket whose
 * stream still holds bytes, is corked or ended, is written through the stream,
 * so nothing overtakes them.
 */
export class DirectWriter {
  readonly #binding: StreamWrapBinding | null;
  #req: WriteReq | null;

  constructor() {
    this.#binding = streamWrapBinding();
    this.#req = this.#binding ? new this.#binding.WriteWrap() : null;
  }

  /** False on a Node without the internals: every write then goes through the stream. */
  get direct(): boolean {
    return this.#binding !== null;
  }

  /** True when libuv queued part of the write (until the kernel takes it, unsentBytes counts it). */
  write(socket: Socket, bytes: Uint8Array): boolean {
    const handle = this.#req === null ? null : handleOf(socket);
    if (handle === null || socket.writableLength > 0 || socket.writableCorked > 0 || socket.writableEnded || socket.destroyed) {
      socket.write(bytes);
      return false;
    }
    const req = this.#req!;
    const err = handle.writeBuffer(req, bytes);
    const binding = this.#binding!;
    const queued = binding.streamBaseState[binding.kLastWriteWasAsync] !== 0;
    if (queued) {
      // libuv holds the request until the kernel takes the rest: it is that write's now.
      req.buffer = bytes;
      req.socket = socket;
      req.oncomplete = onDirectWriteComplete;
      this.#req = new binding.WriteWrap();
    }
    if (err !== 0) socket.destroy(new Error(`write failed (libuv error ${err})`));
    return queued;
  }
}
