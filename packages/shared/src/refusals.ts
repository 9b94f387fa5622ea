import type { Logger } from './log.js';

export interface RefusalLogOptions {
  /** Lines logged in full per reason and window; the rest are counted. */
  limit?: number;
  /** The window, ms: a summary line follows at its end when refusals were counted. */
  windowMs?: number;
  /** The level of the lines: info for refused clients, warn for what the server itself dropped. */
  level?: 'info' | 'warn';
  /** What the summary line counts: "… and 523 more <noun> (reason) in the last 10 s". */
  noun?: string;
}

interface Window {
  startedAt: number;
  logged: number;
  suppressed: number;
  timer: NodeJS.Timeout | undefined;
}

/** Reasons tracked apart at most; past this, they share one window (memory stays bounded). */
const MAX_REASONS = 32;
const OTHER = 'other';

/**
 * Refused requests (404, 503 full, bad requests, refused publishers), logged
 * so that a misbehaving client cannot flood the log: per reason, the first
 * `limit` refusals of each window get a line, the others are counted and said
 * in one summary line when the window ends ("… and 523 more refusals
 * (MKV_ERR_STREAM_NOT_FOUND) in the last 10 s").
 */
export class RefusalLog {
  readonly #log: Logger;
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #level: 'info' | 'warn';
  readonly #noun: string;
  readonly #windows = new Map<string, Window>();

  constructor(log: Logger, options: RefusalLogOptions = {}) {
    this.#log = log;
    this.#limit = options.limit ?? 5;
    this.#windowMs = options.windowMs ?? 10_000;
    this.#level = options.level ?? 'info';
    this.#noun = options.noun ?? 'refusals';
  }

  /** `reason`: a stable code (an error's MKV_ERR_…); `text`: the line to log, if it is within the limit. */
  refuse(reason: string, text: string, fields: object = {}): void {
    const now = Date.now();
    const window = this.#window(reason, now);
    if (window.logged < this.#limit) {
      window.logged++;
      this.#log[this.#level](text, { ...fields, reason });
      return;
    }
    window.suppressed++;
    window.timer ??= setTimeout(() => this.#summarize(reason), window.startedAt + this.#windowMs - now).unref();
  }

  /** Says every pending count now (before the process exits). */
  flush(): void {
    for (const reason of [...this.#windows.keys()]) this.#summarize(reason);
  }

  #window(reason: string, now: number): Window {
    const key = this.#windows.has(reason) || this.#windows.size < MAX_REASONS ? reason : OTHER;
    let window = this.#windows.get(key);
    if (window && now - window.startedAt >= this.#windowMs && window.suppressed === 0) {
      this.#windows.delete(key);
      window = undefined;
    }
    if (!window) this.#windows.set(key, (window = { startedAt: now, logged: 0, suppressed: 0, timer: undefined }));
    return window;
  }

  /** The summary line for a window that counted refusals; the window closes. */
  #summarize(reason: string): void {
    const window = this.#windows.get(reason);
    if (!window) return;
    clearTimeout(window.timer);
    this.#windows.delete(reason);
    if (window.suppressed === 0) return;
    const seconds = Math.max(1, Math.round((Date.now() - window.startedAt) / 1000));
    this.#log[this.#level](`… and ${window.suppressed} more ${this.#noun} (${reason}) in the last ${seconds} s`, {
      reason,
      suppressed: window.suppressed,
      seconds,
    });
  }
}
