import { SegmentRing, contentTypeFor, streamResponseHead, type HeaderMessage, type RingLimits, type TrackSummary } from '@mkvcast/shared';
import { batchOf } from './batch.js';
import { DashStore } from './dashStore.js';
import type { LiveEntry, Player } from './player.js';

/** Where a new player starts: the newest keyframe (a picture at once), or the next one (at the live edge). */
export type StartMode = 'newest' | 'next';

export type LiveStreamOptions = RingLimits;

/**
 * Players written between two readings of the clock in a flush (their lag and
 * latency sample use the last reading): a reading is a heap number, and a
 * flush to 500 players should allocate next to nothing. 16 writes take
 * 0.1–0.2 ms here.
 */
export const CLOCK_EVERY = 16;

/** A DASH store no request has asked for this long is let go (a DASH player asks every few seconds). */
export const DASH_IDLE_MS = 60_000;

/**
 * An edge's copy of one stream: its header, one copy of each recent Segment,
 * and the players it feeds. Every player is handed the same Buffers.
 */
export class LiveStream {
  readonly name: string;
  readonly players = new Set<Player>();
  /** The source ended it; its players are finishing. */
  ended = false;
  /** Bytes written to its players here (header and media), for the stats. */
  bytesOut = 0;
  readonly #ring: SegmentRing;
  readonly #options: LiveStreamOptions;
  /** DASH segments cut from the same Segments, for the window of the ring's limits; null until asked for (see dash). */
  #dash: DashStore | null = null;
  /** When DASH was last asked for, wall-clock ms. */
  #dashAskedAt = 0;
  #header: HeaderMessage;
  #responseHead: Buffer;
  #nextSeq: number | null = null;
  /**
   * Segments not yet written to the players (nor in the ring, where joiners
   * would get them twice): those of one write of the source, which gathers
   * what its inputs give within the latency budget (--max-delay). The edge
   * flushes them once that write is read whole, to each player as one write.
   */
  #pending: LiveEntry[] = [];

  constructor(header: HeaderMessage, options: LiveStreamOptions) {
    this.name = header.stream;
    this.#header = header;
    this.#responseHead = streamResponseHead(contentTypeFor(header.docType));
    this.#ring = new SegmentRing(options);
    this.#options = options;
  }

  /**
   * The stream's DASH segments. Built at the first DASH request from the
   * Segments the ring holds (the same window), then kept up to date as
   * Segments arrive, until no DASH request has come for DASH_IDLE_MS. Most
   * edges serve no DASH player: cutting every block of every stream into
   * GOPs for nobody was, with 50 streams, over half of an idle edge's heap
   * and much of its garbage collection. A segment is a function of its
   * blocks and their times, so a store built late gives the same bytes for
   * the same segment.
   */
  dash(now = Date.now()): DashStore {
    this.#dashAskedAt = now;
    if (this.#dash === null) {
      this.#dash = new DashStore(this.#header, this.#options);
      this.#dash.replay([...this.#ring.entries(), ...this.#pending].map((e) => e.bytes), now);
    }
    return this.#dash;
  }

  get docType(): string {
    return this.#header.docType;
  }

  get tracks(): TrackSummary[] {
    return this.#header.tracks;
  }

  get responseHead(): Buffer {
    return this.#responseHead;
  }

  /** The sequence number the edge holds last, for resuming after a reconnect. */
  get lastSeq(): number | undefined {
    return this.#nextSeq === null ? undefined : this.#nextSeq - 1;
  }

  /**
   * A header arrived again (reconnect, new source run, publisher back). The
   * same generation keeps the players, who resume at the next keyframe; a new
   * generation (new codecs) returns the players that must start afresh.
   */
  replaceHeader(header: HeaderMessage): Player[] {
    this.flush();
    const same = header.generation === this.#header.generation;
    this.#header = header;
    this.#responseHead = streamResponseHead(contentTypeFor(header.docType));
    this.#discontinuity();
    this.#dash?.setHeader(header);
    if (same) return [];
    const stale = [...this.players];
    this.players.clear();
    return stale;
  }

  /** Marks the stream as broken before the next Segment: everyone waits for a keyframe. */
  #discontinuity(): void {
    this.#nextSeq = null;
    this.#ring.clear();
    this.#dash?.break();
    for (const player of this.players) player.resync();
  }

  /** Holds a Segment for the next flush(), which the edge calls once the source's write is read whole. */
  push(entry: LiveEntry): void {
    if (this.#nextSeq !== null && entry.seq !== this.#nextSeq) {
      this.flush();
      this.#discontinuity();
    }
    this.#nextSeq = entry.seq + 1;
    if (this.#dash !== null) {
      const now = Date.now();
      if (now - this.#dashAskedAt > DASH_IDLE_MS) this.#dash = null;
      else this.#dash.push(entry.bytes, now);
    }
    this.#pending.push(entry);
  }

  /** Writes what is pending to every player, as one buffer each. */
  flush(): void {
    const entries = this.#pending;
    if (entries.length === 0) return;
    this.#pending = [];
    for (const entry of entries) this.#ring.push(entry);
    const batch = batchOf(entries);
    let now = Date.now();
    let written = 0;
    let bytes = 0;
    // forEach, not for-of: optimised code still made an iterator result per player
    // (16 bytes each, most of what an edge allocated at --max-delay 0).
    this.players.forEach((player) => {
      bytes += player.deliver(batch, now);
      if (++written % CLOCK_EVERY === 0) now = Date.now();
    });
    this.bytesOut += bytes;
  }

  /**
   * A new player: response head, stream header, then the Segments from the
   * join point (`newest`: the newest keyframe, or `burstMs` before it), or
   * nothing until the next keyframe (`next`).
   */
  join(player: Player, mode: StartMode, burstMs: number): void {
    this.players.add(player);
    this.bytesOut += player.start(this.#responseHead, this.#header.bytes, mode === 'next' ? [] : this.#ring.joinPoint(burstMs));
  }

  leave(player: Player): void {
    this.players.delete(player);
  }
}
