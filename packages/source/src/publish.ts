import type { Socket } from 'node:net';
import {
  HttpError,
  RequestHeadReader,
  describeError,
  simpleResponse,
  type Logger,
  RefusalLog,
  type RequestHead,
} from '@mkvcast/shared';
import { bodyStream } from './inputs/chunked.js';
import { PublishSource } from './publishSource.js';

const STREAM_PATH = /^\/live\/([A-Za-z0-9._~-]{1,128}?)(?:\.(?:mkv|webm))?$/;
const HEAD_TIMEOUT_MS = 10_000;

export interface PublishOptions {
  /** Required as the Basic-auth password or `?key=`; null: anyone may publish. */
  key: string | null;
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
  readonly #options: PublishOptions;
  readonly #reserved: ReadonlySet<string>;
  readonly #start: StartPublished;
  readonly #log: Logger;
  readonly #streams = new Map<string, PublishSource>();
  readonly #refusals: RefusalLog;
  /** close() was called: sessions that end now end with the server. */
  #closing = false;
  /** The end line of each live publish session (said at close() if the session has not ended by then). */
  readonly #live = new Set<(reason: string) => void>();

  /** `reserved`: names of configured inputs, which nobody may publish to. */
  constructor(options: PublishOptions, reserved: Iterable<string>, start: StartPublished, log: Logger) {
    this.#options = options;
    this.#reserved = new Set(reserved);
    this.#start = start;
    this.#log = log;
    this.#refusals = new RefusalLog(log);
  }

  accept(socket: Socket, received: Buffer): void {
    // The body may end with the connection's FIN; the answer still has to go out after it.
    socket.allowHalfOpen = true;
    socket.on('error', () => undefined);
    const reader = new RequestHeadReader();
    const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS);
    let head: RequestHead | undefined;
    const onData = (chunk: Buffer): void => {
      try {
        const parsed = reader.push(chunk);
        if (!parsed) return;
        head = parsed.head;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        this.#publish(socket, parsed.head, parsed.rest, received.length);
      } catch (err) {
        clearTimeout(timer);
        socket.off('data', onData);
        this.#refuse(socket, err, head);
      }
    };
    socket.on('data', onData);
    if (received.length > 0) onData(received);
    if (!socket.destroyed && socket.listenerCount('data') > 0) socket.resume();
  }

  close(): void {
    this.#closing = true;
    // The process exits before the ingests wind down: say how each session ended now.
    for (const end of [...this.#live]) end('server shutdown');
    for (const source of this.#streams.values()) source.close();
    this.#refusals.flush();
  }

  /** A stream whose publisher the last source run lost: it waits --grace for one. */
  restore(name: string): void {
    if (!this.#streams.has(name) && !this.#reserved.has(name)) this.#open(name);
  }

  /** `before`: bytes of the connection read by the edge and the master. */
  #publish(socket: Socket, head: RequestHead, rest: Buffer, before: number): void {
    const name = STREAM_PATH.exec(head.path)?.[1];
    if (!name) throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `publish to /live/<name>, not ${head.path}`);
    this.#authorize(head);
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
    socket.setTimeout(this.#options.idleTimeoutMs, () => stream.destroy(new Error(`publisher silent for ${this.#options.idleTimeoutMs} ms`)));
    const client = { ip: socket.remoteAddress ?? '?', stream: name, method: head.method, userAgent: head.headers.get('user-agent') ?? '' };
    const startedAt = Date.now();
    const logEnd = (reason: string): void => {
      if (!this.#live.delete(logEnd)) return;
      // Every byte of the connection, its request head included: what the publisher sent.
      const bytes = before + socket.bytesRead;
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      this.#log.info(`stream '${name}': publisher ${from} left after ${seconds} s, ${bytes} bytes: ${reason}`, {
        ...client,
        bytes,
        durationMs: Date.now() - startedAt,
        reason,
      });
    };
    const session = {
      stream,
      label: `publisher ${from}`,
      finish: (error?: unknown) => {
        socket.setTimeout(0);
        logEnd(this.#closing ? 'server shutdown' : error ? describeError(error) : 'publisher finished');
        if (error) this.#answer(socket, new HttpError('MKV_ERR_BAD_REQUEST', `stream '${name}' rejected: ${describeError(error)}`));
        else socket.end(simpleResponse(200, `stream '${name}' published\n`));
      },
    };
    const source = existing ?? this.#open(name);
    if (!source.offer(session)) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' already has a publisher`);
    this.#live.add(logEnd);
    this.#log.info(`stream '${name}': publisher ${from} connected`, client);
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
  #authorize(head: RequestHead): void {
    const key = this.#options.key;
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

  /** A publisher turned away (rate-limited line); `head`: its request, when it could be read. */
  #refuse(socket: Socket, err: unknown, head: RequestHead | undefined): void {
    if (err instanceof HttpError) {
      const ip = socket.remoteAddress ?? '?';
      const what = head ? `${head.method} ${head.path}` : 'a bad request';
      const fields = { ip, ...(head ? { method: head.method, path: head.path, userAgent: head.headers.get('user-agent') ?? '' } : {}), status: err.status };
      this.#refusals.refuse(err.code, `refused publisher ${ip} ${what}: ${err.status} ${err.message}`, fields);
    }
    this.#answer(socket, err);
  }

  #answer(socket: Socket, err: unknown): void {
    if (socket.destroyed) return;
    if (err instanceof HttpError) {
      socket.end(simpleResponse(err.status, err.message + '\n', undefined, err.headers));
      return;
    }
    this.#log.error(`publish request failed: ${describeError(err)}`);
    socket.end(simpleResponse(500, 'internal error\n'));
  }
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
