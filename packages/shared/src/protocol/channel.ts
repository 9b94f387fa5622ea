import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
// The pure-JS build: msgpackr's main Node entry also loads msgpackr-extract, a native addon. A
// lone node with an HTTP server keeps 3.7 MiB more of the node binary's code resident once it is
// loaded (41.2 → 45.7 MiB private). Its string extraction only pays on large messages with many
// strings; a Segment's head decodes faster without it here (0.54 against 0.62 µs).
import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';
import { FrameTooLargeError, ProtocolError } from '../errors.js';
import type { SegmentMessage } from './stream.js';

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

/** The frame of a Segment, in two parts: its length, fields and bin head; then its bytes, not copied. */
export type SegmentFrame = readonly [Buffer, Uint8Array];

/** The `bytes` key as a msgpack fixstr; its value (bin 8, 16 or 32) follows. */
const BYTES_KEY = Buffer.from([0xa5, ...Buffer.from('bytes', 'latin1')]);
const FIXMAP = 0x80;
const FIXMAP_MAX = 15;
const MAP16 = 0xde;

/**
 * Encodes a Segment message as encodeFrame({...fields, bytes}) would, byte
 * for byte, without copying its bytes: msgpack copies a bin field into its
 * scratch buffer and encodeFrame copies that again, two copies and an
 * ArrayBuffer per Segment of a media stream, for every Segment the source
 * sends. The other fields are packed as a map whose head then counts one
 * more entry, and the `bytes` key and the bin head are appended by hand.
 */
export function encodeSegmentFrame(message: Omit<SegmentMessage, 'bytes'>, bytes: Uint8Array): SegmentFrame {
  const fields = packr.pack(message);
  const n = bytes.length;
  const binHead = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const headLength = PREFIX + fields.length + BYTES_KEY.length + binHead;
  const head = Buffer.allocUnsafe(headLength);
  head.writeUInt32BE(headLength - PREFIX + n, 0);
  fields.copy(head, PREFIX);
  countOneMore(head, PREFIX);
  let pos = PREFIX + fields.length;
  pos += BYTES_KEY.copy(head, pos);
  if (binHead === 2) {
    head[pos] = 0xc4;
    head.writeUInt8(n, pos + 1);
  } else if (binHead === 3) {
    head[pos] = 0xc5;
    head.writeUInt16BE(n, pos + 1);
  } else {
    head[pos] = 0xc6;
    head.writeUInt32BE(n, pos + 1);
  }
  return [head, bytes];
}

/** Adds one to the entry count of the msgpack map that starts at `at` (packr writes map16 for objects, fixmap elsewhere). */
function countOneMore(map: Buffer, at: number): void {
  const first = map[at]!;
  if (first === MAP16) map.writeUInt16BE(map.readUInt16BE(at + 1) + 1, at + 1);
  else if (first >= FIXMAP && first < FIXMAP + FIXMAP_MAX) map[at] = first + 1;
  else throw new RangeError(`not a small msgpack map (0x${first.toString(16)})`);
}

export interface ChannelOptions {
  maxFrameSize?: number;
}

export interface ChannelEvents<In> {
  message: [In];
  /**
   * After a read whose last frame is whole: the peer's writes so far have
   * all been read, as far as the reader can tell. A read that ends inside a
   * frame means more of that write is on its way.
   */
  caughtUp: [];
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

  /**
   * Sends frames (and frame parts: see encodeSegmentFrame) in one write of
   * the socket: a write is a system call and a wake-up of the reader, the
   * largest cost of the source per Segment when each went alone.
   */
  sendParts(parts: readonly Uint8Array[]): boolean {
    if (this.#closed) return false;
    if (parts.length === 1) return this.#socket.write(parts[0]!);
    this.#socket.cork();
    for (const part of parts) this.#socket.write(part);
    this.#socket.uncork();
    return this.#socket.writableLength < this.#socket.writableHighWaterMark;
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
    try {
      let rest = chunk;
      while (this.#pendingBytes > 0 && rest.length > 0 && !this.#closed) {
        // Only the bytes that complete what is pending are joined to it, not the whole read.
        const take = Math.min(rest.length, this.#need - this.#pendingBytes);
        this.#pending.push(rest.subarray(0, take));
        this.#pendingBytes += take;
        rest = rest.subarray(take);
        if (this.#pendingBytes < this.#need) return;
        const joined = Buffer.concat(this.#pending, this.#pendingBytes);
        this.#pending = [];
        this.#pendingBytes = 0;
        // A length prefix alone sets a larger need (and is pending again); a whole frame is read.
        this.#readFrames(joined);
      }
      if (rest.length > 0 && !this.#closed) this.#readFrames(rest);
    } catch (err) {
      this.close(err as Error);
    }
    if (this.#pendingBytes === 0 && !this.#closed) this.emit('caughtUp');
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

