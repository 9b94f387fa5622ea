import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import { FrameTooLargeError, ProtocolError } from '../errors.js';

/** Default largest frame: a whole Segment plus its fields. */
export const DEFAULT_MAX_FRAME = 64 * 1024 * 1024;
const PREFIX = 4;

// useRecords:false keeps the bytes plain msgpack (no shared structures to negotiate);
// mapsAsObjects gives plain objects back instead of Maps.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/**
 * Encodes one message as a frame: a 4-byte big-endian length, then msgpack.
 * The result owns its memory, so one frame can be written to many sockets.
 */
export function encodeFrame(message: object): Buffer {
  // pack() returns a view of a shared scratch buffer that the next call reuses: copy it out.
  const body = packr.pack(message);
  const frame = Buffer.allocUnsafe(PREFIX + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, PREFIX);
  return frame;
}

export interface ChannelOptions {
  maxFrameSize?: number;
}

export interface ChannelEvents<In> {
  message: [In];
  close: [Error | undefined];
  drain: [];
}

/**
 * Length-prefixed msgpack framing over a stream socket. Decoded `bin` fields
 * are views into the received bytes (no copy); a frame split over reads is
 * joined once, when its last byte arrives.
 */
export class Channel<In extends { type: string }, Out extends { type: string }> extends EventEmitter<ChannelEvents<In>> {
  readonly #socket: Socket;
  readonly #maxFrame: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #need = PREFIX;
  #closed = false;

  constructor(socket: Socket, options: ChannelOptions = {}) {
    super();
    this.#socket = socket;
    this.#maxFrame = options.maxFrameSize ?? DEFAULT_MAX_FRAME;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (err) => this.close(err));
    socket.on('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes accepted by send() that the kernel has not taken yet. */
  get writableLength(): number {
    return this.#socket.writableLength;
  }

  /** Sends one message; false when the socket's buffer is full (wait for 'drain'). */
  send(message: Out): boolean {
    return this.sendFrame(encodeFrame(message));
  }

  /** Sends a frame made by encodeFrame(), for fan-out of one encoding to many channels. */
  sendFrame(frame: Buffer): boolean {
    if (this.#closed) return false;
    return this.#socket.write(frame);
  }

  /** Closes the channel once; 'close' carries the error that caused it, if any. */
  close(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    if (err) this.#socket.destroy();
    else this.#socket.end();
    this.emit('close', err);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let buf = chunk;
    if (this.#pendingBytes > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      if (this.#pendingBytes < this.#need) return;
      buf = Buffer.concat(this.#pending, this.#pendingBytes);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    try {
      this.#readFrames(buf);
    } catch (err) {
      this.close(err as Error);
    }
  }

  #readFrames(buf: Buffer): void {
    let pos = 0;
    while (!this.#closed) {
      const left = buf.length - pos;
      if (left < PREFIX) return this.#keep(buf, pos, PREFIX);
      const size = buf.readUInt32BE(pos);
      if (size > this.#maxFrame) throw new FrameTooLargeError(size, this.#maxFrame);
      if (left < PREFIX + size) return this.#keep(buf, pos, PREFIX + size);
      const message = this.#decode(buf.subarray(pos + PREFIX, pos + PREFIX + size));
      pos += PREFIX + size;
      this.emit('message', message);
    }
  }

  #keep(buf: Buffer, pos: number, need: number): void {
    if (pos === buf.length) return;
    this.#pending = [buf.subarray(pos)];
    this.#pendingBytes = buf.length - pos;
    this.#need = need;
  }

  #decode(body: Buffer): In {
    let message: unknown;
    try {
      message = unpackr.unpack(body);
    } catch (err) {
      throw new ProtocolError(`undecodable frame: ${(err as Error).message}`);
    }
    if (typeof message !== 'object' || message === null || typeof (message as { type?: unknown }).type !== 'string') {
      throw new ProtocolError('frame is not a typed message');
    }
    return message as In;
  }
}

