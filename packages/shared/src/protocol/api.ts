/**
 * Queries over the IPC channels, for the Control API and /metrics. An edge
 * asks the master (it has only its own players); the master asks every edge
 * and the source for fresh data, and answers. Every query carries an id; its
 * answer carries the same id and either a result or an error code.
 */
import { HttpError, HTTP_STATUS, errorAnswer, type HttpErrorCode } from '../http/errors.js';
import { MkvcastError, isErrorCode } from '../errors.js';
import type { MetricsJson } from '../metrics.js';

/** One player, as GET /api/v1/clients shows it. */
export interface ClientInfo {
  /** `<edge>-<n>`: unique across the edges while the edge process lives. */
  id: string;
  stream: string;
  edge: number;
  ip: string;
  userAgent: string;
  /** Bytes written to this player so far. */
  bytes: number;
  /** When it started playing, ISO 8601. */
  since: string;
  /** How long it has been behind the live edge, ms (0: keeping up). */
  lagMs: number;
}

/** One live stream, as the source knows it. */
export interface SourceStreamInfo {
  name: string;
  /** A configured input, or created by a publisher. */
  origin: 'input' | 'publisher';
  docType: string;
  tracks: { number: number; type: string; codec: string }[];
  /** Codec generation: it changes when the stream's tracks change. */
  generation: number;
  segments: number;
  bytesIn: number;
  /** When the source opened it, ISO 8601. */
  since: string;
}

/** One live stream, as GET /api/v1/streams shows it. */
export interface StreamInfo extends SourceStreamInfo {
  url: string;
  players: number;
}

/** One edge, as GET /api/v1/edges shows it. */
export interface EdgeInfo {
  id: number;
  pid: number | null;
  ready: boolean;
  players: number;
  connections: number;
  restarts: number;
}

/** An edge's answer to a load query: its players per stream and open connections. */
export interface EdgeLoad {
  playersByStream: Record<string, number>;
  connections: number;
}

/** Edge → master: what an API request asks for. */
export type ApiQuery =
  | { kind: 'streams' }
  | { kind: 'stream'; name: string }
  | { kind: 'cut-stream'; name: string }
  | { kind: 'clients' }
  | { kind: 'kick-client'; id: string }
  | { kind: 'edges' }
  | { kind: 'server' }
  | { kind: 'reload' }
  | { kind: 'metrics' };

/** Master → edge: what the master needs from each edge. */
export type EdgeQuery = { kind: 'clients' } | { kind: 'kick'; id: string } | { kind: 'load' } | { kind: 'metrics' };

/** Master → source. */
export type SourceQuery = { kind: 'streams' } | { kind: 'cut'; name: string } | { kind: 'metrics' };

/** What each child query answers with. */
export interface EdgeResults {
  clients: ClientInfo[];
  kick: boolean;
  load: EdgeLoad;
  metrics: MetricsJson;
}
export interface SourceResults {
  streams: SourceStreamInfo[];
  cut: boolean;
  metrics: MetricsJson;
}

export interface QueryMessage<Q> {
  type: 'query';
  id: number;
  query: Q;
}

/** The answer to the query with the same id: a result, or an error with its code. */
export interface AnswerMessage {
  type: 'answer';
  id: number;
  result?: unknown;
  error?: { code: string; message: string };
}

interface Waiter {
  resolve: (result: unknown) => void;
  reject: (err: MkvcastError) => void;
  timer: NodeJS.Timeout;
}

/** An error that came back over IPC, typed again; callers and the HTTP table match on its code. */
function remoteError({ code, message }: { code: string; message: string }): MkvcastError {
  if (code in HTTP_STATUS) return new HttpError(code as HttpErrorCode, message);
  return new MkvcastError(isErrorCode(code) ? code : 'MKV_ERR_INTERNAL', message);
}

/**
 * Queries sent and not yet answered: at most `limit` at once (the next is
 * refused with MKV_ERR_BUSY), each for at most `timeoutMs` (then
 * MKV_ERR_TIMEOUT). A process that restarts or never answers costs a timer,
 * never unbounded memory.
 */
export class PendingQueries {
  readonly #limit: number;
  readonly #timeoutMs: number;
  readonly #waiting = new Map<number, Waiter>();
  #next = 1;

  constructor(limit: number, timeoutMs: number) {
    this.#limit = limit;
    this.#timeoutMs = timeoutMs;
  }

  get size(): number {
    return this.#waiting.size;
  }

  /** Sends a query with a fresh id (`send` false: nobody to ask) and resolves with its answer. */
  ask<T>(what: string, send: (id: number) => boolean): Promise<T> {
    if (this.#waiting.size >= this.#limit) {
      return Promise.reject(new HttpError('MKV_ERR_BUSY', `${this.#limit} queries are waiting already; try again`, { 'Retry-After': '1' }));
    }
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new HttpError('MKV_ERR_TIMEOUT', `${what}: no answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      this.#waiting.set(id, { resolve: resolve as (r: unknown) => void, reject, timer });
      if (!send(id)) this.#settle(id, undefined, new HttpError('MKV_ERR_UNAVAILABLE', `${what}: not running now`, { 'Retry-After': '2' }));
    });
  }

  /** An answer arrived (one for an id that timed out already is dropped). */
  answer(message: AnswerMessage): void {
    this.#settle(message.id, message.result, message.error ? remoteError(message.error) : undefined);
  }

  /** Fails every query still waiting (the channel closed). */
  close(): void {
    for (const id of [...this.#waiting.keys()]) this.#settle(id, undefined, new HttpError('MKV_ERR_UNAVAILABLE', 'the process that was asked went away'));
  }

  #settle(id: number, result: unknown, error: MkvcastError | undefined): void {
    const waiter = this.#waiting.get(id);
    if (!waiter) return;
    this.#waiting.delete(id);
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(result);
  }
}

/** Runs the work a query asks for and sends its answer: the result, or the error's code and message. */
export async function answerQuery(id: number, work: () => unknown, send: (answer: AnswerMessage) => void): Promise<void> {
  try {
    send({ type: 'answer', id, result: await work() });
  } catch (err) {
    const { code, message } = errorAnswer(err);
    send({ type: 'answer', id, error: { code, message } });
  }
}
