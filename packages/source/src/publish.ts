import type { Socket } from 'node:net';
import {
  HttpError,
  RequestHeadReader,
  describeError,
  simpleResponse,
  errorAnswer,
  errorResponse,
  isInternal,
  MkvcastError,
  type Logger,
  type RequestHead,
} from '@mkvcast/shared';
import { bodyStream } from './inputs/chunked.js';
import { InputStalledError } from './inputs/errors.js';
import { PublishSource } from './publishSource.js';

const STREAM_PATH = /^\/live\/([A-Za-z0-9._~-]{1,128}?)(?:\.(?:mkv|webm))?$/;
const HEAD_TIMEOUT_MS = 10_000;

export interface PublishOptions {
  /** Required as the Basic-auth password or `?key=`; null: anyone may publish. */
  key: string | null;
  /** Per stream name, the key its publishers give instead of `key`. */
  keys?: Record<string, string>;
  /** How long a stream waits for its publisher to come back, ms. */
  graceMs: number;
  /** A publisher silent this long is cut off, ms. */
  idleTimeoutMs: number;
  /** Published streams live at once; a publisher of one more gets 503. */
  maxStreams: number;
}

/** Starts ingesting a newly published stream from its session source. */
export type StartPublished = (name: string, source: PublishSource) => void;

/**
 * Publishing over HTTP (PUT or POST /live/<name>, as Icecast sources and
 * curl do): checks the key, refuses a second publisher on a live name (409),
 * creates streams on the fly and hands each upload's body to its stream as a
 * session. The connection comes from an edge via the master, with the bytes
 * the edge already read.
 */
export class PublishRouter {
  #options: PublishOptions;
  #reserved: ReadonlySet<string>;
  readonly #start: StartPublished;
  readonly #log: Logger;
  readonly #streams = new Map<string, PublishSource>();
  /** Publishers refused, by reason (the error code's name): read by the metrics. */
  readonly rejected = new Map<string, number>();

  /** `reserved`: names of configured inputs, which nobody may publish to. */
  constructor(options: PublishOptions, reserved: Iterable<string>, start: StartPublished, log: Logger) {
    this.#options = options;
    this.#reserved = new Set(reserved);
    this.#start = start;
    this.#log = log;
  }

  accept(socket: Socket, received: Buffer): void {
    // The body may end with the connection's FIN; the answer still has to go out after it.
    socket.allowHalfOpen = true;
    socket.on('error', () => undefined);
    const reader = new RequestHeadReader();
    const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      try {
        const parsed = reader.push(chunk);
        if (!parsed) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        this.#publish(socket, parsed.head, parsed.rest);
      } catch (err) {
        clearTimeout(timer);
        socket.off('data', onData);
        this.#count(err);
        this.#answer(socket, err);
      }
    };
    socket.on('data', onData);
    if (received.length > 0) onData(received);
    if (!socket.destroyed && socket.listenerCount('data') > 0) socket.resume();
  }

  close(): void {
    for (const source of this.#streams.values()) source.close();
  }

  /** A reload: new keys and limits for the requests from now on; publishers already in keep going. */
  configure(options: PublishOptions, reserved: Iterable<string>): void {
    this.#options = options;
    this.#reserved = new Set(reserved);
  }

  /** A stream whose publisher the last source run lost: it waits --grace for one. */
  restore(name: string): void {
    if (!this.#streams.has(name) && !this.#reserved.has(name)) this.#open(name);
  }

  #publish(socket: Socket, head: RequestHead, rest: Buffer): void {
    const name = STREAM_PATH.exec(head.path)?.[1];
    if (!name) throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `publish to /live/<name>, not ${head.path}`);
    this.#authorize(head, name);
    if (this.#reserved.has(name)) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' is fed by this server's own input`);
    const existing = this.#streams.get(name);
    if (!existing && this.#streams.size >= this.#options.maxStreams) {
      throw new HttpError('MKV_ERR_SERVER_FULL', `${this.#options.maxStreams} published streams are live already`, { 'Retry-After': '10' });
    }
    if (existing?.busy) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' already has a publisher`);

    const framing = bodyFraming(head);
    if (/100-continue/i.test(head.headers.get('expect') ?? '')) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const stream = bodyStream(socket, rest, framing);
    socket.setTimeout(this.#options.idleTimeoutMs, () => stream.destroy(new InputStalledError(`publisher silent for ${this.#options.idleTimeoutMs} ms`)));
    const session = {
      stream,
      label: `publisher ${from}`,
      kind: 'publisher' as const,
      finish: (error?: unknown) => {
        socket.setTimeout(0);
        if (error) this.#answer(socket, sessionError(name, error));
        else socket.end(simpleResponse(200, `stream '${name}' published\n`));
      },
    };
    const source = existing ?? this.#open(name);
    if (!source.offer(session)) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' already has a publisher`);
    this.#log.info(`stream '${name}': publisher ${from} connected`);
  }

  #open(name: string): PublishSource {
    const source = new PublishSource(this.#options.graceMs, () => {
      if (this.#streams.get(name) === source) this.#streams.delete(name);
    });
    this.#streams.set(name, source);
    this.#start(name, source);
    return source;
  }

  /** Basic auth password (any user name, as Icecast's "source") or ?key= (RFC 7617). */
  #authorize(head: RequestHead, name: string): void {
    const keys = this.#options.keys ?? {};
    const key = Object.hasOwn(keys, name) ? keys[name]! : this.#options.key;
    if (key === null) return;
    const auth = head.headers.get('authorization') ?? '';
    const basic = /^Basic\s+(.+)$/i.exec(auth);
    const password = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').slice(1).join(':') : undefined;
    const given = password ?? head.query.get('key') ?? undefined;
    if (given === undefined) {
      throw new HttpError('MKV_ERR_UNAUTHORIZED', 'publishing needs a key', { 'WWW-Authenticate': 'Basic realm="mkvcast"' });
    }
    if (given !== key) throw new HttpError('MKV_ERR_FORBIDDEN', 'wrong publishing key');
  }

  #count(err: unknown): void {
    const reason = `publish_${err instanceof MkvcastError ? err.code.replace(/^MKV_ERR_/, '').toLowerCase() : 'internal'}`;
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  #answer(socket: Socket, err: unknown): void {
    if (socket.destroyed) return;
    if (isInternal(errorAnswer(err))) this.#log.error(`publish request failed: ${describeError(err)}`);
    socket.end(errorResponse(err));
  }
}

/**
 * What a publisher is told when its session ended on an error: a stream
 * cut or closed says so; anything else in its upload is a bad request.
 */
function sessionError(name: string, error: unknown): MkvcastError {
  if (error instanceof MkvcastError && (error.code === 'MKV_ERR_STREAM_CUT' || error.code === 'MKV_ERR_STREAM_CLOSED')) return error;
  return new HttpError('MKV_ERR_BAD_REQUEST', `stream '${name}' rejected: ${describeError(error)}`, {}, { cause: error });
}

/** How the upload's body is delimited (RFC 9112 §6.3): chunked, a length, or the end of the connection. */
function bodyFraming(head: RequestHead): { chunked: true } | { length: number } | { close: true } {
  const te = head.headers.get('transfer-encoding');
  if (te !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new HttpError('MKV_ERR_BAD_REQUEST', `unsupported Transfer-Encoding: ${te}`);
    return { chunked: true };
  }
  const length = head.headers.get('content-length');
  if (length !== undefined) {
    if (!/^\d{1,15}$/.test(length)) throw new HttpError('MKV_ERR_BAD_REQUEST', 'bad Content-Length');
    return { length: Number(length) };
  }
  return { close: true };
}
