import type { Logger } from '../log.js';

/** A token bucket: up to `burst` events at once, then `perSecond` on average. */
export class TokenBucket {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(burst: number, perSecond: number, now: () => number = Date.now) {
    this.#burst = burst;
    this.#perMs = perSecond / 1000;
    this.#now = now;
    this.#tokens = burst;
    this.#at = now();
  }

  /** Takes one token: false when the bucket is empty (the event is over the rate). */
  take(): boolean {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#perMs);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Log lines that a crowd could repeat thousands of times a second (refusals,
 * dropped hook calls): a burst of them, then about one a second; the next
 * line printed says how many were left out.
 */
export class RateLimitedLog {
  readonly #log: Logger;
  readonly #bucket: TokenBucket;
  #skipped = 0;

  constructor(log: Logger, bucket: TokenBucket = new TokenBucket(10, 1)) {
    this.#log = log;
    this.#bucket = bucket;
  }

  info(text: string): void {
    this.#write('info', text);
  }

  warn(text: string): void {
    this.#write('warn', text);
  }

  #write(level: 'info' | 'warn', text: string): void {
    if (!this.#bucket.take()) {
      this.#skipped++;
      return;
    }
    const skipped = this.#skipped;
    this.#skipped = 0;
    this.#log[level](skipped > 0 ? `${text} (and ${skipped} more like it not logged)` : text);
  }
}
