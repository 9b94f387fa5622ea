/** How far behind the clock a paced input may fall before pacing restarts from now. */
const MAX_LAG_MS = 3000;

/**
 * Paced media is released on a shared wall-clock grid of this step: every
 * file due within one step goes out at its end, so the source writes the
 * pieces of many streams to an edge in one write (see Hub.#outbox), and the
 * edge writes to all their players in one burst.
 *
 * The step is the span of a piece of a stream with video (VIDEO_SPLIT_MS in
 * ingest.ts): each stream has about one piece due per step, so a player still
 * gets one write per piece, but the streams no longer take turns. With a
 * 20 ms step, 50 looped files reached the edges in about 14 batches a second
 * (one per --max-delay window), each with a few streams, and their players
 * were written in as many bursts: the server took about a quarter more CPU
 * per delivered Gbit (npm run bench -- --streams 50 --players 1000).
 *
 * A file's media is at most this late, which no player can tell: a file has
 * no live moment to be late for.
 */
export const PACE_STEP_MS = 250;

/** One timer per step of the grid, whatever the number of streams waiting on it. */
class PaceClock {
  readonly #steps = new Map<number, (() => void)[]>();

  /** Calls `release` at the end of the grid step that holds `due` (performance.now() ms). */
  at(due: number, release: () => void): void {
    const step = Math.ceil(due / PACE_STEP_MS) * PACE_STEP_MS;
    const waiting = this.#steps.get(step);
    if (waiting !== undefined) {
      waiting.push(release);
      return;
    }
    this.#steps.set(step, [release]);
    setTimeout(() => this.#release(step), Math.max(0, step - performance.now()));
  }

  #release(step: number): void {
    const waiting = this.#steps.get(step);
    this.#steps.delete(step);
    for (const release of waiting ?? []) release();
  }
}

const clock = new PaceClock();

/**
 * Releases media at the pace a player plays it: media time `ts` (ms since the
 * stream started) is released at wall time t0 + ts, rounded up to the grid.
 * After a stall longer than MAX_LAG_MS the clock restarts rather than
 * bursting to catch up.
 */
export class Pacer {
  readonly #enabled: boolean;
  #t0: number | undefined;
  /** Resolves the wait in progress; null when none is. */
  #waiting: (() => void) | null = null;
  #cancelled = false;

  constructor(enabled: boolean) {
    this.#enabled = enabled;
  }

  /** It holds media until due (a file, a paced upload), rather than letting it through as it comes. */
  get paced(): boolean {
    return this.#enabled;
  }

  /** Resolves when media time `ts` is due, or at once after cancel(); true when it had to wait for it. */
  wait(ts: number): Promise<boolean> {
    if (!this.#enabled || this.#cancelled) return Promise.resolve(false);
    const now = performance.now();
    if (this.#t0 === undefined || now - (this.#t0 + ts) > MAX_LAG_MS) {
      this.#t0 = now - ts;
      return Promise.resolve(false);
    }
    const due = this.#t0 + ts;
    if (due - now <= 1) return Promise.resolve(false);
    return new Promise((resolve) => {
      const release = (): void => {
        if (this.#waiting === release) this.#waiting = null;
        resolve(true);
      };
      this.#waiting = release;
      clock.at(due, release);
    });
  }

  /** Ends the wait in progress and every later one: the stream is stopping. */
  cancel(): void {
    this.#cancelled = true;
    this.#waiting?.();
  }
}
