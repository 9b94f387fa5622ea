import { SegmentRing, contentTypeFor, streamResponseHead, type HeaderMessage, type RingLimits, type TrackSummary } from '@mkvcast/shared';
import type { LiveEntry, Player } from './player.js';

/**
 * An edge's copy of one stream: its header, one copy of each recent Segment,
 * and the players it feeds. Every player is handed the same Buffers.
 */
export class LiveStream {
  readonly name: string;
  readonly players = new Set<Player>();
  /** The source ended it; its players are finishing. */
  ended = false;
  readonly #ring: SegmentRing;
  #header: HeaderMessage;
  #responseHead: Buffer;
  #nextSeq: number | null = null;

  constructor(header: HeaderMessage, limits: RingLimits) {
    this.name = header.stream;
    this.#header = header;
    this.#responseHead = streamResponseHead(contentTypeFor(header.docType));
    this.#ring = new SegmentRing(limits);
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
    const same = header.generation === this.#header.generation;
    this.#header = header;
    this.#responseHead = streamResponseHead(contentTypeFor(header.docType));
    this.#discontinuity();
    if (same) return [];
    const stale = [...this.players];
    this.players.clear();
    return stale;
  }

  /** Marks the stream as broken before the next Segment: everyone waits for a keyframe. */
  #discontinuity(): void {
    this.#nextSeq = null;
    this.#ring.clear();
    for (const player of this.players) player.resync();
  }

  push(entry: LiveEntry): void {
    if (this.#nextSeq !== null && entry.seq !== this.#nextSeq) this.#discontinuity();
    this.#nextSeq = entry.seq + 1;
    this.#ring.push(entry);
    const now = Date.now();
    for (const player of this.players) player.deliver(entry, now);
  }

  /** A new player: response head, stream header, then the Segments from the join point. */
  join(player: Player, burstMs: number): void {
    this.players.add(player);
    player.start(this.#responseHead, this.#header.bytes, this.#ring.joinPoint(burstMs));
  }

  leave(player: Player): void {
    this.players.delete(player);
  }
}
