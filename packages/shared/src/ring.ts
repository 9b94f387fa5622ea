/**
 * A bounded ring of recent Segments, oldest first. Bounded by bytes and by
 * media time; entries from the newest keyframe on are kept even past the
 * time limit (a player must be able to start there) unless the hard byte
 * limit is reached.
 */
export interface RingEntry {
  seq: number;
  /** ms since stream start */
  ts: number;
  keyframe: boolean;
  bytes: Uint8Array;
}

export interface RingLimits {
  /** Media time to keep, ms. */
  maxAgeMs: number;
  /** Bytes to keep; past this even the newest GOP is trimmed. */
  maxBytes: number;
}

export class SegmentRing<E extends RingEntry = RingEntry> {
  readonly #limits: RingLimits;
  /** Slots before #head are trimmed: emptied at once, compacted away now and then. */
  #entries: (E | undefined)[] = [];
  #head = 0;
  #bytes = 0;
  #lastKeyIndex = -1;

  constructor(limits: RingLimits) {
    this.#limits = limits;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.length - this.#head;
  }

  get newest(): E | undefined {
    return this.#entries[this.#entries.length - 1];
  }

  push(entry: E): void {
    this.#entries.push(entry);
    this.#bytes += entry.bytes.length;
    if (entry.keyframe) this.#lastKeyIndex = this.#entries.length - 1;
    this.#trim(entry.ts);
  }

  clear(): void {
    this.#entries = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#lastKeyIndex = -1;
  }

  /** Every entry held, oldest first. */
  entries(): E[] {
    return this.#entries.slice(this.#head) as E[];
  }

  /** Entries after sequence `seq`, or undefined when `seq + 1` is no longer (or not yet) held. */
  after(seq: number): E[] | undefined {
    const first = this.#entries[this.#head];
    if (!first) return undefined;
    const index = this.#head + (seq + 1 - first.seq);
    if (index < this.#head || index > this.#entries.length) return undefined;
    return this.#entries.slice(index) as E[];
  }

  /**
   * Where a new player starts: the newest keyframe entry at least `burstMs`
   * older than the newest entry (0: the newest keyframe), and everything after it.
   */
  joinPoint(burstMs = 0): E[] {
    if (this.#lastKeyIndex < this.#head) return [];
    const newestTs = this.#entries[this.#entries.length - 1]!.ts;
    let start = this.#lastKeyIndex;
    if (burstMs > 0) {
      for (let i = this.#lastKeyIndex; i >= this.#head; i--) {
        const e = this.#entries[i]!;
        if (!e.keyframe) continue;
        start = i;
        if (newestTs - e.ts >= burstMs) break;
      }
    }
    return this.#entries.slice(start) as E[];
  }

  #trim(newestTs: number): void {
    const { maxAgeMs, maxBytes } = this.#limits;
    while (this.#head < this.#entries.length - 1) {
      const oldest = this.#entries[this.#head]!;
      const tooOld = newestTs - oldest.ts > maxAgeMs;
      const tooBig = this.#bytes > maxBytes;
      if (!tooOld && !tooBig) break;
      // Keep the newest GOP whole unless memory forces it.
      if (this.#head >= this.#lastKeyIndex && !tooBig) break;
      this.#bytes -= oldest.bytes.length;
      // Release the bytes now: on an edge they are views that pin a whole socket read.
      this.#entries[this.#head++] = undefined;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#lastKeyIndex -= this.#head;
      this.#head = 0;
    }
  }
}
