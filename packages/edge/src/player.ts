import type { Socket } from 'node:net';
import type { LatencyHistogram, RingEntry } from '@mkvcast/shared';

export interface PlayerPolicy {
  /** Unsent bytes past which the player skips Segments until the next keyframe. */
  backlogBytes: number;
  /** A player lagging this long without catching up is disconnected, ms. */
  slowTimeoutMs: number;
}

export interface PlayerCounters {
  skips: number;
  kicked: number;
  bytesOut: number;
  /** For each live Segment written: ms since the source had it (its `sentAt`). */
  latency: LatencyHistogram;
}

/** A live Segment as the edge holds it: a ring entry with the time the source had it. */
export type LiveEntry = RingEntry & { sentAt?: number };

/**
 * One HTTP player of a live stream. Segments are written as they arrive,
 * never copied; a player whose socket stops taking them skips ahead to the
 * next keyframe (its unsent bytes stay under backlogBytes plus one Segment),
 * and is disconnected when it has lagged for slowTimeoutMs.
 */
export class Player {
  readonly socket: Socket;
  readonly #policy: PlayerPolicy;
  readonly #counters: PlayerCounters;
  #waitingForKeyframe = false;
  #laggingSince = 0;

  constructor(socket: Socket, policy: PlayerPolicy, counters: PlayerCounters) {
    this.socket = socket;
    this.#policy = policy;
    this.#counters = counters;
  }

  /** The response head, the stream header and the Segments from the join point, in one write batch. */
  start(responseHead: Buffer, header: Uint8Array, entries: readonly RingEntry[]): void {
    const socket = this.socket;
    socket.cork();
    socket.write(responseHead);
    socket.write(header);
    let bytes = header.length;
    for (const entry of entries) {
      socket.write(entry.bytes);
      bytes += entry.bytes.length;
    }
    socket.uncork();
    this.#counters.bytesOut += bytes;
    if (entries.length === 0) this.#waitingForKeyframe = true;
  }

  /** After a gap in the stream: resume only at a keyframe. */
  resync(): void {
    this.#waitingForKeyframe = true;
  }

  deliver(entry: LiveEntry, now: number): void {
    if (this.#waitingForKeyframe && !entry.keyframe) return;
    const socket = this.socket;
    if (socket.writableLength > this.#policy.backlogBytes) {
      this.#lag(now);
      return;
    }
    this.#waitingForKeyframe = false;
    this.#laggingSince = 0;
    socket.write(entry.bytes);
    this.#counters.bytesOut += entry.bytes.length;
    // Per player, taken after this player's write: the last player of a big edge waits for the rest.
    if (entry.sentAt !== undefined) this.#counters.latency.record(Date.now() - entry.sentAt);
  }

  /** Ends the response once what was written is sent; gives up on a reader that never takes it. */
  finish(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), this.#policy.slowTimeoutMs).unref();
  }

  #lag(now: number): void {
    if (this.#laggingSince === 0) {
      this.#laggingSince = now;
      this.#waitingForKeyframe = true;
      this.#counters.skips++;
    } else if (now - this.#laggingSince > this.#policy.slowTimeoutMs) {
      this.#counters.kicked++;
      this.socket.destroy();
    }
  }
}
