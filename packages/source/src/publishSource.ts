import { StreamClosedError } from '@mkvcast/shared';
import type { Session, SessionSource } from './inputs/session.js';

/**
 * The sessions of a published stream: one publisher at a time. When a
 * publisher leaves, the stream waits `graceMs` for one to come back (its
 * players stay connected) before it ends.
 */
export class PublishSource implements SessionSource {
  readonly #graceMs: number;
  readonly #onEnd: () => void;
  #pending: Session | null = null;
  #active = false;
  /** The session being ingested, to cut it on command. */
  #current: Session | null = null;
  #closed = false;
  #wake: (() => void) | null = null;

  /** `onEnd` runs, synchronously, once the source gives up: no new publisher may join it after that. */
  constructor(graceMs: number, onEnd: () => void) {
    this.#graceMs = graceMs;
    this.#onEnd = onEnd;
  }

  /** A publisher is sending, or about to be. */
  get busy(): boolean {
    return this.#active || this.#pending !== null;
  }

  /** Takes a publisher's session; false when another one is live (the caller answers 409). */
  offer(session: Session): boolean {
    if (this.#closed || this.busy) return false;
    const finish = session.finish;
    this.#pending = {
      ...session,
      finish: (error) => {
        this.#active = false;
        this.#current = null;
        finish?.(error);
      },
    };
    this.#wake?.();
    return true;
  }

  async next(signal: AbortSignal): Promise<Session | null> {
    if (!this.#pending && !this.#closed) await this.#waitForPublisher(signal);
    const session = this.#pending;
    this.#pending = null;
    if (!session || this.#closed || signal.aborted) {
      this.#end();
      session?.finish?.(new StreamClosedError());
      return null;
    }
    this.#active = true;
    this.#current = session;
    return session;
  }

  /** No more publishers; with a cause, the one sending now is cut off too (its upload fails with it). */
  close(cause?: Error): void {
    this.#end();
    this.#wake?.();
    if (cause) this.#current?.stream.destroy(cause);
  }

  #waitForPublisher(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, this.#graceMs);
      signal.addEventListener('abort', done);
      this.#wake = done;
    });
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onEnd();
  }
}
