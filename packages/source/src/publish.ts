import type { Socket } from 'node:net';
import {
  Hooks,
  HttpError,
  NO_HOOKS,
  NO_JWT,
  describeError,
  errorResponse,
  hookClient,
  jwtEnabled,
  simpleResponse,
  streamNameOf,
  tokenOf,
  tokenVerifier,
  type HookClient,
  type HooksConfig,
  type JwtConfig,
  errorAnswer,
  isInternal,
  MkvcastError,
  type Logger,
  RefusalLog,
  receivedHead,
  type HandedHead,
  type RequestHead,
} from '@mkvcast/shared';
import { bodyStream } from './inputs/chunked.js';
import { InputStalledError } from './inputs/errors.js';
import { PublishSource } from './publishSource.js';

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

/** Hooks and tokens, read at each use (a reload may change them). */
export interface PublishAccess {
  hooks?: HooksConfig;
  jwt?: JwtConfig;
}

/** Starts ingesting a newly published stream from its session source. */
export type StartPublished = (name: string, source: PublishSource) => void;

/** Reads an upload's socket once per --max-delay window (Hub.holdReads); returns the release. */
export type HoldReads = (socket: Socket) => () => void;

/**
 * Publishing over HTTP (PUT or POST /live/<name>, as Icecast sources and
 * curl do): checks the key, refuses a second publisher on a live name (409),
 * creates streams on the fly and hands each upload's body to its stream as a
 * session. The connection comes from an edge via the master, with the
 * request head the edge parsed and the body bytes read before it came here.
 */
export class PublishRouter {
  #options: PublishOptions;
  #reserved: ReadonlySet<string>;
  readonly #start: StartPublished;
  readonly #log: Logger;
  readonly #streams = new Map<string, PublishSource>();
  /** Publishers refused, by reason (the error code's name): read by the metrics. */
  readonly rejected = new Map<string, number>();
  readonly #access: () => PublishAccess;
  readonly #holdReads: HoldReads;
  readonly #hooks: Hooks;
  readonly #refusals: RefusalLog;
  /** close() was called: sessions that end now end with the server. */
  #closing = false;
  /** The end line of each live publish session (said at close() if the session has not ended by then). */
  readonly #live = new Set<(reason: string) => void>();

  /** `reserved`: names of configured inputs, which nobody may publish to. */
  constructor(
    options: PublishOptions,
    reserved: Iterable<string>,
    start: StartPublished,
    log: Logger,
    access: () => PublishAccess = () => ({}),
    holdReads: HoldReads = () => () => undefined,
  ) {
    this.#options = options;
    this.#reserved = new Set(reserved);
    this.#start = start;
    this.#log = log;
    this.#access = access;
    this.#holdReads = holdReads;
    this.#hooks = new Hooks(log);
    this.#refusals = new RefusalLog(log);
  }

  /**
   * `handed`: the request head as the edge parsed it, checked here again as
   * untrusted input; `body`: the bytes after it that the edge and the master
   * read, in order. The socket's own bytes follow them.
   */
  accept(socket: Socket, handed: HandedHead, body: Buffer): void {
    // The body may end with the connection's FIN; the answer still has to go out after it.
    socket.allowHalfOpen = true;
    socket.on('error', () => undefined);
    // Read when the body is: until then, what arrives waits in the socket.
    socket.pause();
    let head: RequestHead | undefined;
    try {
      head = receivedHead(handed);
    } catch (err) {
      this.#count(err);
      this.#refuse(socket, err, undefined);
      return;
    }
    const early = handed.bytes + body.length;
    this.#publish(socket, head, body, early).catch((err: unknown) => {
      this.#count(err);
      this.#refuse(socket, err, head);
    });
  }

  close(): void {
    this.#closing = true;
    // The process exits before the ingests wind down: say how each session ended now.
    for (const end of [...this.#live]) end('server shutdown');
    for (const source of this.#streams.values()) source.close();
    this.#refusals.flush();
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

  /** `early`: bytes of the connection read by the edge and the master before it came here. */
  async #publish(socket: Socket, head: RequestHead, rest: Buffer, early: number): Promise<void> {
    // The edge sends only these here; checked again, as everything in the head is.
    if (head.method !== 'PUT' && head.method !== 'POST') throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', 'publish with PUT or POST', { Allow: 'PUT, POST' });
    const name = streamNameOf(head.path);
    if (!name) throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `publish to /live/<name>, not ${head.path}`);
    refuseUnstreamable(head);
    const paced = realtimeAsked(head);
    await this.#authorize(head, name);
    this.#check(name);
    const client = await this.#askHook(socket, head, name);
    const since = Date.now();
    let reason: string | null = null;
    // Admitted by on_publish: on_unpublish follows when the connection ends, whatever ends it.
    if (client) {
      const tell = (): void => this.#tellUnpublished(client, name, early + socket.bytesRead, Date.now() - since, reason ?? 'publisher closed');
      if (socket.destroyed) tell();
      else socket.once('close', tell);
    }
    if (socket.destroyed) return;
    // Again: another publisher may have taken the name while the hook was asked.
    this.#check(name);
    const existing = this.#streams.get(name);

    const framing = bodyFraming(head);
    if (/100-continue/i.test(head.headers.get('expect') ?? '')) socket.write('HTTP/1.1 100 Continue\r\n\r\n');
    const from = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const stream = bodyStream(socket, rest, framing);
    socket.on('timeout', () => {
      // Paced, the socket waits for us, not for the publisher, while its bytes wait to be read.
      if (paced && (stream.readableLength > 0 || stream.received)) return socket.setTimeout(this.#options.idleTimeoutMs);
      stream.destroy(new InputStalledError(`publisher silent for ${this.#options.idleTimeoutMs} ms`));
    });
    socket.setTimeout(this.#options.idleTimeoutMs);
    const who = { ip: socket.remoteAddress ?? '?', stream: name, method: head.method, userAgent: head.headers.get('user-agent') ?? '', paced };
    const startedAt = Date.now();
    const logEnd = (reason: string): void => {
      if (!this.#live.delete(logEnd)) return;
      // Every byte of the connection, its request head included: what the publisher sent.
      const bytes = early + socket.bytesRead;
      const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
      this.#log.info(`stream '${name}': publisher ${from} left after ${seconds} s, ${bytes} bytes: ${reason}`, {
        ...who,
        bytes,
        durationMs: Date.now() - startedAt,
        reason,
      });
    };
    // A paced upload is read as its timestamps fall due; a live one once per latency window.
    const release = paced ? () => undefined : this.#holdReads(socket);
    socket.once('close', release);
    const session = {
      stream,
      label: `publisher ${from}${paced ? ' (paced)' : ''}`,
      kind: 'publisher' as const,
      paced,
      finish: (error?: unknown) => {
        release();
        reason = error ? describeError(error) : 'publisher ended the upload';
        socket.setTimeout(0);
        logEnd(this.#closing ? 'server shutdown' : error ? describeError(error) : 'publisher finished');
        if (error) this.#answer(socket, sessionError(name, error));
        else socket.end(simpleResponse(200, `stream '${name}' published\n`));
      },
    };
    const source = existing ?? this.#open(name);
    if (!source.offer(session)) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' already has a publisher`);
    this.#live.add(logEnd);
    this.#log.info(`stream '${name}': publisher ${from} connected${paced ? ', paced by its timestamps' : ''}`, who);
  }

  /** Refuses a name this server feeds itself, one past --max-published, or one with a publisher. */
  #check(name: string): void {
    if (this.#reserved.has(name)) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' is fed by this server's own input`);
    const existing = this.#streams.get(name);
    if (!existing && this.#streams.size >= this.#options.maxStreams) {
      throw new HttpError('MKV_ERR_SERVER_FULL', `${this.#options.maxStreams} published streams are live already`, { 'Retry-After': '10' });
    }
    if (existing?.busy) throw new HttpError('MKV_ERR_PUBLISHER_CONFLICT', `'${name}' already has a publisher`);
  }

  /** Asks on_publish, when configured; the client as the hooks know it, or null when no hook tracks publishers. */
  async #askHook(socket: Socket, head: RequestHead, name: string): Promise<HookClient | null> {
    const { onPublish, onUnpublish, timeoutMs } = this.#access().hooks ?? NO_HOOKS;
    if (onPublish === null && onUnpublish === null) return null;
    const client = hookClient(socket.remoteAddress, head);
    if (onPublish === null) return client;
    await this.#hooks.ask(onPublish, { action: 'on_publish', stream: name, ...client }, timeoutMs);
    return client;
  }

  #tellUnpublished(client: HookClient, name: string, bytes: number, durationMs: number, reason: string): void {
    const { onUnpublish, timeoutMs } = this.#access().hooks ?? NO_HOOKS;
    if (onUnpublish !== null) this.#hooks.tell(onUnpublish, { action: 'on_unpublish', stream: name, ...client, bytes, durationMs, reason }, timeoutMs);
  }

  #open(name: string): PublishSource {
    const source = new PublishSource(this.#options.graceMs, () => {
      if (this.#streams.get(name) === source) this.#streams.delete(name);
    });
    this.#streams.set(name, source);
    this.#start(name, source);
    return source;
  }

  /**
   * The publish key, as a Basic auth password (any user name, as Icecast's
   * "source") or ?key= (RFC 7617). With tokens on, a token that allows
   * publishing (`publish: true`) does too; without a key configured, only a
   * token does.
   */
  async #authorize(head: RequestHead, name: string): Promise<void> {
    // A key of the stream's own config section wins over the server's.
    const keys = this.#options.keys ?? {};
    const key = Object.hasOwn(keys, name) ? keys[name]! : this.#options.key;
    const jwt = this.#access().jwt ?? NO_JWT;
    const given = givenKey(head);
    if (!jwtEnabled(jwt)) {
      if (key === null) return;
      if (given === undefined) {
        throw new HttpError('MKV_ERR_UNAUTHORIZED', 'publishing needs a key', { 'WWW-Authenticate': 'Basic realm="mkvcast"' });
      }
      if (given !== key) throw new HttpError('MKV_ERR_FORBIDDEN', 'wrong publishing key');
      return;
    }
    if (key !== null && given !== undefined) {
      if (given !== key) throw new HttpError('MKV_ERR_FORBIDDEN', 'wrong publishing key');
      return;
    }
    await tokenVerifier(jwt).verify(tokenOf(head), name, 'publish');
  }

  #count(err: unknown): void {
    const reason = `publish_${err instanceof MkvcastError ? err.code.replace(/^MKV_ERR_/, '').toLowerCase() : 'internal'}`;
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
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

/** What a sender of one request per buffer should use instead. */
const USE_INSTEAD =
  'publish one continuous upload instead: GStreamer shout2send to this server as an Icecast mount ' +
  '(shout2send ip=<host> port=<port> mount=/live/<name> password=<key>), or curl -T / ffmpeg -f webm';

/**
 * Uploads that cannot carry a live stream, refused before any byte of them
 * is read. GStreamer's souphttpclientsink sends one PUT per buffer, each
 * after the first with `Content-Range: bytes <offset>-…/*`: a body that
 * starts mid-stream, without the EBML header, so each would end the stream
 * it joins. Its User-Agent ("GStreamer souphttpclientsink …") names it; a
 * Content-Range past byte 0 gives away any sender of such pieces (RFC 9110
 * §14.5: a 400 for a partial PUT the resource does not support).
 */
function refuseUnstreamable(head: RequestHead): void {
  if (/souphttpclientsink/i.test(head.headers.get('user-agent') ?? '')) {
    throw new HttpError('MKV_ERR_UPLOAD_UNSTREAMABLE', `GStreamer souphttpclientsink sends one request per buffer, which cannot carry a live stream; ${USE_INSTEAD}`);
  }
  const range = /^\s*bytes\s+(\d+)-/i.exec(head.headers.get('content-range') ?? '');
  if (range && Number(range[1]) > 0) {
    throw new HttpError('MKV_ERR_UPLOAD_UNSTREAMABLE', `a partial upload (Content-Range from byte ${range[1]}) starts mid-stream, without an EBML header; ${USE_INSTEAD}`);
  }
}

/** Accepted spellings of the realtime switch. */
const YES = /^(1|true|yes|on)$/i;
const NO = /^(0|false|no|off)?$/i;

/**
 * `?realtime=1` or `X-Mkvcast-Realtime: 1`: the upload is a recording, to be
 * released at its timestamps' pace (as a file input is) rather than as fast as
 * it arrives.
 */
function realtimeAsked(head: RequestHead): boolean {
  const value = head.query.get('realtime') ?? head.headers.get('x-mkvcast-realtime');
  if (value === null || value === undefined) return false;
  if (YES.test(value.trim())) return true;
  if (NO.test(value.trim())) return false;
  throw new HttpError('MKV_ERR_BAD_REQUEST', `realtime must be 1 or 0, not '${value}'`);
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

/** The key a publisher gave: the Basic auth password, or ?key=; undefined: none. */
function givenKey(head: RequestHead): string | undefined {
  const basic = /^Basic\s+(.+)$/i.exec(head.headers.get('authorization') ?? '');
  const password = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':').slice(1).join(':') : undefined;
  return password ?? head.query.get('key') ?? undefined;
}
