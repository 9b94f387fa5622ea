import { randomUUID } from 'node:crypto';
import { HttpError } from '../http/errors.js';
import type { RequestHead } from '../http/request.js';
import type { Logger } from '../log.js';
import { describeError } from '../errors.js';
import { RefusalLog } from '../refusals.js';

export type HookAction = 'on_publish' | 'on_unpublish' | 'on_play' | 'on_stop';

/** Who a client is, as the hooks hear of it. */
export interface HookClient {
  /** Unique per connection, across processes and runs: ties a stop to its play. */
  clientId: string;
  ip: string | null;
  /** The request's query parameters (the last value of a repeated one). */
  query: Record<string, string>;
  userAgent: string | null;
}

/** The JSON body POSTed to a hook. */
export interface HookEvent extends HookClient {
  action: HookAction;
  stream: string;
  /** Stop events: bytes sent to the player, or received from the publisher. */
  bytes?: number;
  /** Stop events: how long the client was in, ms. */
  durationMs?: number;
  /** Stop events: why it ended, where known. */
  reason?: string;
}

export interface HookLimits {
  /** Admission calls (on_publish, on_play) in flight at once; past that, clients get 503. */
  asks: number;
  /** Notifications (on_unpublish, on_stop) in flight at once; past that, they are dropped. */
  tells: number;
}

/**
 * Bounds per process: a slow hook server holds one fetch (a socket, a few KB)
 * per call for up to --hooks-timeout; without a cap a crowd would pile them up.
 */
export const HOOK_LIMITS: HookLimits = { asks: 256, tells: 256 };

export function hookClient(remoteAddress: string | undefined, head: RequestHead): HookClient {
  return {
    clientId: randomUUID(),
    ip: remoteAddress ?? null,
    query: Object.fromEntries(head.query),
    userAgent: head.headers.get('user-agent') ?? null,
  };
}

/**
 * The HTTP hook caller of one process (SRS's http_hooks, MediaMTX's
 * runOnX over HTTP): POSTs a JSON event to the configured URL. Admission
 * hooks are awaited and anything but a 2xx answer, a timeout or an
 * unreachable hook refuses the client; stop hooks are sent and forgotten.
 * A client's stop is told only after its admission was answered, so a hook
 * server always hears the two in order.
 */
export class Hooks {
  readonly #limits: HookLimits;
  readonly #log: Logger;
  /** Notifications dropped or failed: said a few at a time, the rest counted. */
  readonly #quiet: RefusalLog;
  #asking = 0;
  #telling = 0;

  constructor(log: Logger, limits: HookLimits = HOOK_LIMITS) {
    this.#log = log;
    this.#limits = limits;
    this.#quiet = new RefusalLog(log, { level: 'warn', noun: 'hook calls dropped or failed' });
  }

  /** Calls in flight: admissions and notifications. */
  get inFlight(): { asks: number; tells: number } {
    return { asks: this.#asking, tells: this.#telling };
  }

  /**
   * Asks the hook at `url` whether to let the client in: resolves when it
   * answered 2xx, throws the HttpError that refuses the client otherwise.
   * A client that leaves meanwhile does not cut the call short: once the
   * hook has said yes, it hears of the stop too.
   */
  async ask(url: string, event: HookEvent, timeoutMs: number): Promise<void> {
    if (this.#asking >= this.#limits.asks) {
      throw new HttpError('MKV_ERR_HOOKS_BUSY', `too many ${event.action} hook calls waiting for an answer`, { 'Retry-After': '2' });
    }
    this.#asking++;
    let status: number;
    try {
      status = await post(url, event, timeoutMs);
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') {
        throw new HttpError('MKV_ERR_HOOK_FAILED', `the ${event.action} hook did not answer within ${timeoutMs / 1000} s`);
      }
      throw new HttpError('MKV_ERR_HOOK_FAILED', `the ${event.action} hook could not be reached: ${describeError(causeOf(err))}`);
    } finally {
      this.#asking--;
    }
    if (status < 200 || status > 299) throw new HttpError('MKV_ERR_HOOK_REFUSED', `refused by the ${event.action} hook (it answered ${status})`);
  }

  /** Tells the hook at `url` of an event; its answer does not matter. Dropped past the bound. */
  tell(url: string, event: HookEvent, timeoutMs: number): void {
    if (this.#telling >= this.#limits.tells) {
      this.#quiet.refuse(`${event.action}_dropped`, `${event.action} hook: ${this.#telling} calls in flight already; one dropped`);
      return;
    }
    this.#telling++;
    post(url, event, timeoutMs)
      .then((status) => {
        if (status < 200 || status > 299) this.#log.debug(`${event.action} hook answered ${status}`);
      })
      .catch((err: unknown) => this.#quiet.refuse(`${event.action}_failed`, `${event.action} hook failed: ${describeError(causeOf(err))}`))
      .finally(() => this.#telling--);
  }
}

/** POSTs the event; resolves with the status once the head is in, the body is never read. */
async function post(url: string, event: HookEvent, timeoutMs: number): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event),
    signal: AbortSignal.timeout(timeoutMs),
    // A redirect is an answer, not an invitation to call somewhere else.
    redirect: 'manual',
  });
  // The answer's body is not ours to hold: drop it (bounded memory whatever the hook sends).
  await response.body?.cancel().catch(() => undefined);
  return response.status;
}

/** fetch() wraps what went wrong ("fetch failed"); the cause names it (ECONNREFUSED, …). */
function causeOf(err: unknown): unknown {
  return err instanceof TypeError && err.cause !== undefined ? err.cause : err;
}
