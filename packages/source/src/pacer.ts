import { setTimeout as sleep } from 'node:timers/promises';

/** How far behind the clock a paced input may fall before pacing restarts from now. */
const MAX_LAG_MS = 3000;

/**
 * Releases media at the pace a player plays it: media time `ts` (ms since the
 * stream started) is released at wall time t0 + ts. After a stall longer than
 * MAX_LAG_MS the clock restarts rather than bursting to catch up.
 */
export class Pacer {
  readonly #enabled: boolean;
  #t0: number | undefined;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  /** Resolves when media time `ts` is due; true when it had to wait for it. */
  async wait(ts: number, signal?: AbortSignal): Promise<boolean> {
    if (!this.#enabled) return false;
    const now = performance.now();
    if (this.#t0 === undefined || now - (this.#t0 + ts) > MAX_LAG_MS) {
      this.#t0 = now - ts;
      return false;
    }
    const delay = this.#t0 + ts - now;
    if (delay <= 1) return false;
    await sleep(delay, undefined, { signal });
    return true;
  }
}
