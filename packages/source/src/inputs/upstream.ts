import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { UsageError, describeError } from '@mkvcast/shared';
import { InputStalledError, UpstreamError } from './errors.js';
import type { Session, SessionSource } from './session.js';
import { guardStall } from './stall.js';
import { sleepUnlessClosed } from './sleep.js';

export interface UpstreamOptions {
  /** First wait after every URL failed; also the wait after a session that delivered nothing. */
  minBackoffMs?: number;
  /** The wait doubles per failed round up to this. */
  maxBackoffMs?: number;
  /** No answer, or no body bytes while we wait for them, for this long: the connection is dropped. */
  idleTimeoutMs?: number;
  log?: (line: string) => void;
}

const MAX_REDIRECTS = 5;
/** RFC 9110 §15.4: each may carry a Location that a GET can follow. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const HEADERS = { 'User-Agent': 'mkvcast', Accept: '*/*' };

function parseUpstreamUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`bad upstream URL "${text}": expected http://host[:port]/path or https://…`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`bad upstream URL "${text}": only http:// and https:// are supported`);
  }
  return url;
}

/**
 * Pulls a live Matroska/WebM stream from an HTTP(S) origin, session after session, forever.
 * Each round tries the URLs in order, the first 200 wins. A round starts at the URL after the
 * one whose session just ended (a dropped or stalled origin is not asked first again; a host
 * that vanished would cost an idle timeout), so a stream failed over to B stays on B while B
 * serves, whether A is back or not: no second seam. When all fail it waits (exponential
 * backoff, reset once a session delivers data) and starts the round again.
 */
export class UpstreamSource implements SessionSource {
  readonly #urls: URL[];
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #idle: number;
  readonly #log: (line: string) => void;
  #backoff: number;
  #attempts = 0;
  #closed = false;
  /** The body of the last session handed out: did its reader get any bytes? */
  #last: IncomingMessage | undefined;
  /** Where the next round starts: after the URL of the last session. */
  #first = 0;
  readonly #requests = new Set<ClientRequest>();
  readonly #responses = new Set<IncomingMessage>();
  /** Wakes pending waits when the source is closed. */
  readonly #wakers = new Set<() => void>();

  constructor(urls: string[], options: UpstreamOptions = {}) {
    if (urls.length === 0) throw new UsageError('an upstream input needs at least one URL');
    this.#urls = urls.map(parseUpstreamUrl);
    this.#minBackoff = options.minBackoffMs ?? 250;
    this.#maxBackoff = Math.max(options.maxBackoffMs ?? 10_000, this.#minBackoff);
    this.#idle = options.idleTimeoutMs ?? 15_000;
    this.#log = options.log ?? (() => {});
    this.#backoff = this.#minBackoff;
  }

  /** The next session; null once closed. Rejects with the signal's reason when it aborts. */
  async next(signal: AbortSignal): Promise<Session | null> {
    signal.throwIfAborted();
    if (this.#closed) return null;
    if (!(await this.#afterSession(signal))) return null;
    for (;;) {
      for (let i = 0; i < this.#urls.length; i++) {
        if (this.#closed) return null;
        const index = (this.#first + i) % this.#urls.length;
        const session = await this.#try(this.#urls[index]!, signal);
        if (session) {
          this.#first = (index + 1) % this.#urls.length;
          return session;
        }
      }
      if (this.#closed) return null;
      const n = this.#urls.length;
      this.#log(`${n === 1 ? 'the upstream' : `all ${n} upstreams`} failed; retrying in ${this.#backoff} ms`);
      if (!(await this.#backOff(signal))) return null;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const req of this.#requests) req.destroy();
    for (const res of this.#responses) res.destroy();
    for (const wake of this.#wakers) wake();
  }

  /** A session that delivered data resets the backoff; one that delivered nothing waits it out. */
  async #afterSession(signal: AbortSignal): Promise<boolean> {
    const last = this.#last;
    this.#last = undefined;
    if (!last) return true;
    if (last.readableDidRead) {
      this.#backoff = this.#minBackoff;
      return true;
    }
    this.#log(`the last upstream session delivered nothing; retrying in ${this.#backoff} ms`);
    return this.#backOff(signal);
  }

  /** One URL, redirects followed: a session, or undefined (logged) when it failed. */
  async #try(start: URL, signal: AbortSignal): Promise<Session | undefined> {
    const attempt = ++this.#attempts;
    let url = start;
    try {
      for (let hops = 0; ; hops++) {
        const res = await this.#get(url, signal);
        if (signal.aborted || this.#closed) {
          res.destroy(); // answered just as the caller gave up
          throw new UpstreamError('abandoned');
        }
        const status = res.statusCode ?? 0;
        if (status === 200) return this.#session(res, start, url, attempt);
        res.destroy(); // only the status line and headers matter
        const location = res.headers.location;
        if (!REDIRECTS.has(status) || !location) throw new UpstreamError(`HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd(), status);
        if (hops === MAX_REDIRECTS) throw new UpstreamError(`more than ${MAX_REDIRECTS} redirects`, status);
        url = redirectTarget(url, location);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const where = url.href === start.href ? start.href : `${start.href} → ${url.href}`;
      if (!this.#closed) this.#log(`upstream ${where} (attempt ${attempt}): ${describeError(err)}`);
      return undefined;
    }
  }

  #session(res: IncomingMessage, start: URL, url: URL, attempt: number): Session {
    const socket = res.socket as Socket;
    guardStall(socket, res, this.#idle, () => {
      res.destroy(new InputStalledError(`upstream ${url.href} sent nothing for ${this.#idle} ms`));
    });
    this.#responses.add(res);
    res.once('close', () => this.#responses.delete(res));
    this.#last = res;
    const via = url.href === start.href ? '' : ` → ${url.href}`;
    return { stream: res, label: `${start.href}${via} (attempt ${attempt})`, kind: 'upstream' };
  }

  /** One GET: resolves with the response once its head arrived. */
  #get(url: URL, signal: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      signal.throwIfAborted();
      const client = url.protocol === 'https:' ? https : http;
      // No agent: one fresh connection per session, closed with it. No Icy-MetaData: we want bare media.
      const req = client.get(url, { agent: false, headers: HEADERS });
      this.#requests.add(req);
      const onTimeout = (): void => {
        req.destroy(new UpstreamError(`no answer in ${this.#idle} ms`));
      };
      const onAbort = (): void => {
        req.destroy();
      };
      const settle = (): void => {
        this.#requests.delete(req);
        signal.removeEventListener('abort', onAbort);
        req.socket?.off('timeout', onTimeout);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.once('socket', (socket) => {
        socket.setTimeout(this.#idle);
        socket.once('timeout', onTimeout);
      });
      req.once('response', (res) => {
        settle();
        resolve(res);
      });
      req.on('error', (err) => {
        settle();
        reject(err);
      });
      req.once('close', () => {
        settle();
        reject(new UpstreamError('connection closed before an answer'));
      });
    });
  }

  /** Waits the current backoff and doubles it; false when closed meanwhile. */
  async #backOff(signal: AbortSignal): Promise<boolean> {
    const ms = this.#backoff;
    this.#backoff = Math.min(ms * 2, this.#maxBackoff);
    return this.#sleep(ms, signal);
  }

  #sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    return sleepUnlessClosed(ms, signal, this.#wakers);
  }

}

/** Resolves a Location against the URL that sent it; only http(s) targets are followed. */
function redirectTarget(from: URL, location: string): URL {
  let to: URL;
  try {
    to = new URL(location, from);
  } catch {
    throw new UpstreamError(`bad redirect Location "${location}"`);
  }
  if (to.protocol !== 'http:' && to.protocol !== 'https:') throw new UpstreamError(`redirect to unsupported URL ${to.href}`);
  return to;
}
