import type { Socket } from 'node:net';
import { DirectWriter, unsentBytes, type LatencyHistogram, type RingEntry } from '@mkvcast/shared';
import type { Batch } from './batch.js';
import { firstClusterTimestamp, rebased } from './rebase.js';

export interface PlayerPolicy {
  /** Unsent bytes past which the player skips Segments until the next keyframe. */
  backlogBytes: number;
  /** A player behind the live edge this long skips Segments until the next keyframe, ms. */
  maxLagMs: number;
  /** A player behind this long without catching up is disconnected, ms. */
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

/** Why a player's session ended, as its access line says. */
export type EndReason = 'client closed' | 'kicked as slow' | 'stream ended' | 'codecs changed' | 'server shutdown';

/** Who a player is, for its access line. */
export interface PlayerClient {
  ip: string;
  stream: string;
  path: string;
  userAgent: string;
}

/** A player's session once it ended: one access line. */
export interface AccessRecord extends PlayerClient {
  /** Body bytes the kernel took (the stream header and Segments; not the response head). */
  bytes: number;
  durationMs: number;
  reason: EndReason;
}

const UNKNOWN_CLIENT: PlayerClient = { ip: '?', stream: '?', path: '?', userAgent: '' };

/** Every player's live writes go through it (see DirectWriter). */
const writer = new DirectWriter();

/** How often a finishing player's progress is checked, ms. */
const FINISH_CHECK_MS = 500;

/**
 * One HTTP player of a live stream. Segments are written as they arrive,
 * never copied. A player is behind while the kernel refuses what was written
 * to it (its send buffer is capped, so that shows within a second or two of
 * it falling behind). Behind for maxLagMs, or holding more than backlogBytes
 * unsent, it skips ahead to the next keyframe; behind for slowTimeoutMs, it
 * is disconnected.
 */
export class Player {
  readonly socket: Socket;
  readonly #policy: PlayerPolicy;
  readonly #counters: PlayerCounters;
  #waitingForKeyframe = false;
  /** When this player was first seen behind (0: it is not). */
  #behindSince = 0;
  /** Skipping in this lag episode (counted once). */
  #skipping = false;
  /** Bytes written to this player after its response head (a plain field: read by the Control API and at metrics collect time). */
  bytes = 0;
  /** Rebasing (a browser media element, see rebase.ts): the Timestamp its first Cluster had, once written. */
  readonly #rebase: boolean;
  #base: number | null = null;
  readonly #client: PlayerClient;
  readonly #startedAt = Date.now();
  /** Bytes of the HTTP response head, which the access line leaves out. */
  #headBytes = 0;
  /** A direct write left bytes in libuv's queue, which unsentBytes must then ask for (a call into C++). */
  #queued = false;
  /** Set by the first cause that ends the session; none: the client went away. */
  #reason: EndReason | undefined;
  #reported = false;

  constructor(socket: Socket, policy: PlayerPolicy, counters: PlayerCounters, client: PlayerClient = UNKNOWN_CLIENT, rebase = false) {
    this.socket = socket;
    this.#policy = policy;
    this.#counters = counters;
    this.#client = client;
    this.#rebase = rebase;
  }

  /** Ends the session now (the connection is destroyed). */
  end(reason: EndReason): void {
    this.#reason ??= reason;
    this.socket.destroy();
  }

  /**
   * The session's access record, once (null after that): when its socket has
   * closed, or before the process exits. Bytes are those the kernel took
   * (written, less what Node or libuv still holds), so the figure is what the
   * client got, give or take what sat in the kernel's send buffer.
   */
  report(): AccessRecord | null {
    if (this.#reported) return null;
    this.#reported = true;
    return {
      ...this.#client,
      bytes: Math.max(0, this.bytes - unsentBytes(this.socket)),
      durationMs: Date.now() - this.#startedAt,
      reason: this.#reason ?? 'client closed',
    };
  }

  /** What this player is sent of `bytes` (whole Clusters): the shared bytes, or its rebased copy. */
  #own(bytes: Uint8Array): Uint8Array {
    if (!this.#rebase) return bytes;
    this.#base ??= firstClusterTimestamp(bytes) ?? 0;
    return this.#base === 0 ? bytes : rebased(bytes, this.#base);
  }

  /** Why the server ended this player (for its on_stop hook); null: it has not (the client went, or is still here). */
  get endReason(): EndReason | null {
    return this.#reason ?? null;
  }

  /** The response head, the stream header and the Segments from the join point, in one write batch; returns the bytes written (header and Segments). */
  start(responseHead: Buffer, header: Uint8Array, entries: readonly RingEntry[]): number {
    const socket = this.socket;
    socket.cork();
    socket.write(responseHead);
    socket.write(header);
    let bytes = header.length;
    for (const entry of entries) {
      socket.write(this.#own(entry.bytes));
      bytes += entry.bytes.length;
    }
    socket.uncork();
    this.#headBytes = responseHead.length;
    this.bytes += bytes;
    this.#counters.bytesOut += bytes;
    if (entries.length === 0) this.#waitingForKeyframe = true;
    return bytes;
  }

  /** After a gap in the stream: resume only at a keyframe. */
  resync(): void {
    this.#waitingForKeyframe = true;
  }

  /**
   * Writes a batch of live Segments, from its first keyframe when this player
   * waits for one; returns the bytes written. `now`: the wall clock just before
   * this write, for its lag and its latency sample.
   */
  deliver(batch: Batch, now: number): number {
    const socket = this.socket;
    const lag = this.#lag(now);
    if (lag > this.#policy.slowTimeoutMs) {
      this.#counters.kicked++;
      this.end('kicked as slow');
      return 0;
    }
    if (lag > this.#policy.maxLagMs || this.#unsent() > this.#policy.backlogBytes) {
      this.#skip();
      return 0;
    }
    this.#skipping = false;
    let bytes = batch.bytes;
    if (this.#waitingForKeyframe) {
      if (batch.keyAt < 0) return 0;
      if (batch.keyAt > 0) bytes = bytes.subarray(batch.keyAt);
      this.#waitingForKeyframe = false;
    }
    if (writer.write(socket, this.#own(bytes))) this.#queued = true;
    this.bytes += bytes.length;
    this.#counters.bytesOut += bytes.length;
    // Per player, as of its write (give or take the CLOCK_EVERY writes before it, see LiveStream.flush):
    // the last player of a big edge waits for the rest.
    if (batch.sentAt !== undefined) this.#counters.latency.record(now - batch.sentAt);
    return bytes.length;
  }

  /**
   * Ends the response once every byte written has gone to the kernel (which
   * delivers the rest after the socket closes). Gives up on a reader that
   * takes nothing for slowTimeoutMs.
   */
  finish(reason: EndReason = 'stream ended'): void {
    const socket = this.socket;
    if (socket.destroyed) return;
    this.#reason ??= reason;
    socket.once('finish', () => socket.destroy());
    socket.end();
    let left = unsentBytes(socket);
    let progressAt = Date.now();
    const timer = setInterval(() => {
      const now = Date.now();
      const unsent = unsentBytes(socket);
      if (unsent < left) {
        left = unsent;
        progressAt = now;
      } else if (now - progressAt > this.#policy.slowTimeoutMs) {
        // It had the end of the stream coming, but took too little of it.
        this.#reason = 'kicked as slow';
        socket.destroy();
      }
    }, Math.min(FINISH_CHECK_MS, this.#policy.slowTimeoutMs));
    timer.unref();
    socket.once('close', () => clearInterval(timer));
  }

  /** How long this player has been behind, ms, as of its last delivery (0: keeping up). */
  lagMs(now: number): number {
    return this.#behindSince === 0 || this.#unsent() === 0 ? 0 : now - this.#behindSince;
  }

  /** ms this player has been behind: something written earlier is still not with the kernel. */
  #lag(now: number): number {
    if (this.#unsent() === 0) {
      this.#behindSince = 0;
      return 0;
    }
    if (this.#behindSince === 0) this.#behindSince = now;
    return now - this.#behindSince;
  }

  /** Bytes written that the kernel has not taken (see #queued). */
  #unsent(): number {
    const buffered = this.socket.writableLength;
    if (!this.#queued) return buffered;
    const unsent = unsentBytes(this.socket);
    if (unsent === buffered) this.#queued = false;
    return unsent;
  }

  #skip(): void {
    this.#waitingForKeyframe = true;
    if (this.#skipping) return;
    this.#skipping = true;
    this.#counters.skips++;
  }
}
