import { Readable } from 'node:stream';
import { ChunkedEncodingError, UploadTruncatedError } from './errors.js';

/** Longest chunk-size line (size, extensions) we read before calling it corrupt. */
export const MAX_CHUNK_LINE = 1024;
/** Most trailer-section bytes we skip before calling it corrupt. */
export const MAX_TRAILERS = 8 * 1024;

const CR = 0x0d;
const LF = 0x0a;
const HTAB = 0x09;
const SP = 0x20;
const SEMICOLON = 0x3b;

/**
 * Where the decoder is in RFC 9112 §7.1:
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 */
type State =
  | 'size' // hex digits of chunk-size
  | 'ext' // after the digits: BWS and chunk extensions, ignored
  | 'sizeLf' // the LF that ends the chunk-size line
  | 'data' // chunk-data, #remaining bytes to go
  | 'dataCr' // the CRLF after chunk-data
  | 'dataLf'
  | 'trailerStart' // start of a trailer field line, or the final CRLF
  | 'trailer' // inside a trailer field line, ignored
  | 'trailerLf'
  | 'endLf' // the LF of the final CRLF
  | 'done';

export interface ChunkedResult {
  /** Decoded chunk-data in order: views of the pushed buffer, never empty. */
  data: Buffer[];
  /** The last-chunk and the trailer section have been read. */
  done: boolean;
  /** When done: the bytes after the chunked body (possibly empty). */
  rest?: Buffer;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30; // 0-9
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10; // A-F
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10; // a-f
  return -1;
}

/** Control characters other than HTAB may not appear in extensions or field lines. */
function isControl(byte: number): boolean {
  return (byte < SP && byte !== HTAB) || byte === 0x7f;
}

function describeByte(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/**
 * Decodes HTTP/1.1 chunked transfer coding (RFC 9112 §7.1) as it arrives. Chunk data is returned
 * as views of the input; state (including a half-read size line) carries across pushes, so any
 * split of the input decodes the same. Extensions and trailers are read and ignored, within bounds.
 */
export class ChunkedDecoder {
  #state: State = 'size';
  /** The chunk-size being parsed, then the bytes of chunk-data still to come. */
  #remaining = 0;
  #digits = 0;
  #lineLength = 0;
  #trailerLength = 0;
  #error: ChunkedEncodingError | undefined;

  get done(): boolean {
    return this.#state === 'done';
  }

  /** Feeds bytes; throws a ChunkedEncodingError (MKV_ERR_BAD_CHUNKED) on malformed input, and on every push after. */
  push(chunk: Buffer): ChunkedResult {
    if (this.#error) throw this.#error;
    const data: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const n = Math.min(this.#remaining, chunk.length - pos);
        data.push(chunk.subarray(pos, pos + n));
        pos += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = 'dataCr';
        continue;
      }
      try {
        this.#step(chunk[pos]!);
      } catch (err) {
        this.#error = err as ChunkedEncodingError;
        throw err;
      }
      pos++;
    }
    if (this.#state !== 'done') return { data, done: false };
    return { data, done: true, rest: chunk.subarray(pos) };
  }

  /** Advances over one byte of framing (everything but chunk-data). */
  #step(byte: number): void {
    switch (this.#state) {
      case 'size':
        this.#countLine(byte);
        return this.#sizeByte(byte);
      case 'ext':
        this.#countLine(byte);
        if (byte === CR) this.#state = 'sizeLf';
        else if (byte === LF) throw new ChunkedEncodingError('chunk-size line ends in LF without CR');
        else if (isControl(byte)) throw new ChunkedEncodingError(`control byte ${describeByte(byte)} in a chunk extension`);
        return;
      case 'sizeLf':
        if (byte !== LF) throw new ChunkedEncodingError(`expected LF after CR in the chunk-size line, got ${describeByte(byte)}`);
        this.#lineLength = 0;
        this.#digits = 0;
        this.#state = this.#remaining === 0 ? 'trailerStart' : 'data';
        return;
      case 'dataCr':
        if (byte !== CR) throw new ChunkedEncodingError(`expected CRLF after chunk data, got ${describeByte(byte)}`);
        this.#state = 'dataLf';
        return;
      case 'dataLf':
        if (byte !== LF) throw new ChunkedEncodingError(`expected LF after chunk data, got ${describeByte(byte)}`);
        this.#state = 'size';
        return;
      default:
        return this.#trailerByte(byte);
    }
  }

  #sizeByte(byte: number): void {
    const digit = hexValue(byte);
    if (digit >= 0) {
      this.#remaining = this.#remaining * 16 + digit;
      this.#digits++;
      // Never trust a declared size we could not even count (RFC 9112 §7.1: anticipate overflow).
      if (this.#remaining > Number.MAX_SAFE_INTEGER) throw new ChunkedEncodingError('chunk size too large');
      return;
    }
    if (this.#digits === 0) throw new ChunkedEncodingError(`bad chunk size: ${describeByte(byte)} where a hex digit was expected`);
    if (byte === CR) this.#state = 'sizeLf';
    else if (byte === SEMICOLON || byte === SP || byte === HTAB) this.#state = 'ext';
    else if (byte === LF) throw new ChunkedEncodingError('chunk-size line ends in LF without CR');
    else throw new ChunkedEncodingError(`bad chunk size: ${describeByte(byte)} after the hex digits`);
  }

  #trailerByte(byte: number): void {
    if (++this.#trailerLength > MAX_TRAILERS) throw new ChunkedEncodingError(`trailer section longer than ${MAX_TRAILERS} bytes`);
    switch (this.#state) {
      case 'trailerStart':
        if (byte === CR) this.#state = 'endLf';
        else if (byte === LF) throw new ChunkedEncodingError('trailer section ends in LF without CR');
        else if (isControl(byte)) throw new ChunkedEncodingError(`control byte ${describeByte(byte)} in a trailer field`);
        else this.#state = 'trailer';
        return;
      case 'trailer':
        if (byte === CR) this.#state = 'trailerLf';
        else if (byte === LF) throw new ChunkedEncodingError('trailer field line ends in LF without CR');
        else if (isControl(byte)) throw new ChunkedEncodingError(`control byte ${describeByte(byte)} in a trailer field`);
        return;
      case 'trailerLf':
        if (byte !== LF) throw new ChunkedEncodingError(`expected LF after CR in a trailer field line, got ${describeByte(byte)}`);
        this.#state = 'trailerStart';
        return;
      case 'endLf':
        if (byte !== LF) throw new ChunkedEncodingError(`expected LF to end the chunked body, got ${describeByte(byte)}`);
        this.#state = 'done';
        return;
    }
  }

  /** The CR that ends the line is not part of it. */
  #countLine(byte: number): void {
    if (byte !== CR && ++this.#lineLength > MAX_CHUNK_LINE) throw new ChunkedEncodingError(`chunk-size line longer than ${MAX_CHUNK_LINE} bytes`);
  }
}

/** How an upload's body is delimited (RFC 9112 §6.3). */
export type BodyFraming = { chunked: true } | { length: number } | { close: true };

export interface BodyStreamOptions {
  /** Bytes the body stream buffers before it pauses the socket; Node's default when absent. */
  highWaterMark?: number;
}

/** An upload's body; `received`: the sender has sent all of it (or it failed), whether or not it was read yet. */
export interface BodyReadable extends Readable {
  readonly received: boolean;
}

/**
 * The body of an upload on `socket` as a byte stream: chunked decoded, a Content-Length counted,
 * or read until the peer ends. `firstBytes` are body bytes read along with the request head.
 * The socket is paused while the stream's buffer is full and resumed when it is read. When the
 * body is complete the socket is left open and paused, bytes past the body unshifted back onto
 * it, so the caller can answer the request. Malformed chunked data errors the stream with a
 * ChunkedEncodingError; a connection that ends early, with an UploadTruncatedError.
 */
export function bodyStream(socket: Readable, firstBytes: Buffer, framing: BodyFraming, options: BodyStreamOptions = {}): BodyReadable {
  if ('length' in framing && !(Number.isSafeInteger(framing.length) && framing.length >= 0)) {
    throw new RangeError(`bad body length ${framing.length}`);
  }
  return new BodyStream(socket, firstBytes, framing, options);
}

class BodyStream extends Readable {
  readonly #socket: Readable;
  readonly #framing: BodyFraming;
  readonly #decoder: ChunkedDecoder | undefined;
  /** For a sized body: bytes still to come. */
  #left: number;
  #first: Buffer | undefined;
  #attached = false;
  #finished = false;

  readonly #onData = (chunk: Buffer): void => this.#take(chunk);
  readonly #onEnd = (): void => this.#ended();
  readonly #onClose = (): void => this.#ended();
  readonly #onError = (err: Error): void => this.#fail(err);

  constructor(socket: Readable, firstBytes: Buffer, framing: BodyFraming, options: BodyStreamOptions) {
    super(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark });
    this.#socket = socket;
    this.#framing = framing;
    this.#decoder = 'chunked' in framing ? new ChunkedDecoder() : undefined;
    this.#left = 'length' in framing ? framing.length : 0;
    this.#first = firstBytes;
  }

  get received(): boolean {
    return this.#finished;
  }

  override _read(): void {
    if (this.#finished) return;
    if (!this.#attached) return this.#start();
    this.#socket.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // The socket is the caller's: it still has to answer the request.
    if (!this.#finished) {
      this.#finished = true;
      this.#detach();
    }
    callback(err);
  }

  /** First read: the bytes that came with the head, then the socket. */
  #start(): void {
    this.#attached = true;
    const first = this.#first!;
    this.#first = undefined;
    if ('length' in this.#framing && this.#left === 0) return this.#finish(first);
    if (first.length > 0) this.#take(first);
    if (this.#finished) return;
    const socket = this.#socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    if (socket.readableEnded || socket.destroyed) return this.#ended();
    socket.resume();
  }

  #take(chunk: Buffer): void {
    if (this.#finished) return;
    if (this.#decoder) return this.#takeChunked(this.#decoder, chunk);
    if ('close' in this.#framing) return this.#pushAll([chunk]);
    const n = Math.min(this.#left, chunk.length);
    this.#left -= n;
    if (this.#left > 0) return this.#pushAll([chunk]);
    this.#pushAll([chunk.subarray(0, n)]);
    this.#finish(chunk.subarray(n));
  }

  #takeChunked(decoder: ChunkedDecoder, chunk: Buffer): void {
    let result: ChunkedResult;
    try {
      result = decoder.push(chunk);
    } catch (err) {
      return this.#fail(err as Error);
    }
    this.#pushAll(result.data);
    if (result.done) this.#finish(result.rest!);
  }

  #pushAll(pieces: Buffer[]): void {
    let more = true;
    for (const piece of pieces) if (piece.length > 0) more = this.push(piece) && more;
    if (!more && !this.#finished) this.#socket.pause();
  }

  /** The socket ended or closed before the body did. */
  #ended(): void {
    if (this.#finished) return;
    if ('close' in this.#framing) return this.#finish(Buffer.alloc(0));
    const what = this.#decoder ? 'the last chunk' : `${this.#left} more bytes of the body`;
    this.#fail(new UploadTruncatedError(`the upload's connection ended before ${what}`));
  }

  /** The body is complete: hand the socket back, bytes past the body included. */
  #finish(rest: Buffer): void {
    this.#finished = true;
    this.#detach();
    if (rest.length > 0 && !this.#socket.readableEnded && !this.#socket.destroyed) this.#socket.unshift(rest);
    this.push(null);
  }

  #fail(err: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#detach();
    this.destroy(err);
  }

  #detach(): void {
    if (!this.#attached) return; // never touched: leave the socket as the caller had it
    const socket = this.#socket;
    socket.pause();
    socket.off('data', this.#onData);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onClose);
    socket.off('error', this.#onError);
  }
}
