/**
 * One stream's DASH segments on an edge: GOPs cut from the blocks it
 * receives, by their media timestamps (never by per-edge counters), kept for
 * the window of `--buffer`. A GOP is published when the next one starts (its
 * video keyframe arrives); a break in what the edge receives drops the GOP in
 * progress, so no segment is ever partial.
 */
import type { HeaderMessage } from '@mkvcast/shared';
import { blocksOf, segmentBytes, type Block } from './dashBlocks.js';
import { etagOf, parseDashHeader, type DashHeader } from './dashHeader.js';

export interface DashLimits {
  /** Media time listed and kept, ms (`--buffer`). */
  maxAgeMs: number;
  /** Bytes kept (`--buffer-mb`); a GOP larger than this is never published. */
  maxBytes: number;
}

/** Audio-only streams: one segment per this much media time, cut at the first block of each slot. */
export const AUDIO_SLOT_MS = 2000;
/**
 * Media time and the wall clock may part (a paused upload, a source back after
 * a while): past this the manifest's availabilityStartTime is set anew.
 */
const MAX_DRIFT_MS = 5000;

/** A published segment. Its bytes are built on first request (most edges serve no DASH player), then kept. */
export class DashSegment {
  readonly t: number;
  readonly d: number;
  /** Its blocks' bytes: what the window counts (the built segment is about as large). */
  readonly size: number;
  #blocks: Block[] | null;
  #bytes: Buffer | null = null;
  #etag = '';

  constructor(t: number, d: number, blocks: Block[], size: number) {
    this.t = t;
    this.d = d;
    this.#blocks = blocks;
    this.size = size;
  }

  get bytes(): Buffer {
    if (!this.#bytes) {
      this.#bytes = segmentBytes(this.t, this.#blocks!);
      this.#etag = etagOf(this.#bytes);
      // The blocks are views into socket reads: built, they are let go.
      this.#blocks = null;
    }
    return this.#bytes;
  }

  get etag(): string {
    void this.bytes;
    return this.#etag;
  }
}

interface Gop {
  start: number;
  blocks: Block[];
  bytes: number;
}

export class DashStore {
  readonly #limits: DashLimits;
  #header: DashHeader;
  #generation: number;
  /** By start time, oldest first. */
  #segments = new Map<number, DashSegment>();
  #bytes = 0;
  #newest: DashSegment | null = null;
  #gop: Gop | null = null;
  /** Audio-only: the slot of the last block seen, undefined after a break. */
  #lastSlot: number | undefined;
  /** Wall-clock ms at media time 0: the manifest's availabilityStartTime. */
  #anchor: number | null = null;
  /** GOPs dropped: cut by a break, or too large to keep. */
  dropped = 0;

  constructor(header: HeaderMessage, limits: DashLimits) {
    this.#limits = limits;
    this.#header = parseDashHeader(header);
    this.#generation = header.generation;
  }

  get header(): DashHeader {
    return this.#header;
  }

  get generation(): number {
    return this.#generation;
  }

  get anchor(): number | null {
    return this.#anchor;
  }

  get maxAgeMs(): number {
    return this.#limits.maxAgeMs;
  }

  /** Listed segments, oldest first. */
  segments(): DashSegment[] {
    return [...this.#segments.values()];
  }

  segment(t: number): DashSegment | undefined {
    return this.#segments.get(t);
  }

  /**
   * A header again (reconnect, source restart): the same one keeps the
   * segments (timestamps go on rising); new codecs start a new store.
   */
  setHeader(header: HeaderMessage): void {
    const next = parseDashHeader(header);
    if (header.generation !== this.#generation || next.initEtag !== this.#header.initEtag || next.timescale !== this.#header.timescale) {
      this.#reset();
      this.#generation = header.generation;
      this.#header = next;
    }
    this.break();
  }

  /** The edge missed something (a sequence gap): the GOP in progress may lack blocks. */
  break(): void {
    if (this.#gop) this.dropped++;
    this.#gop = null;
    this.#lastSlot = undefined;
  }

  /** One Segment message's bytes (whole Clusters), as received at `now` (wall-clock ms). */
  push(bytes: Uint8Array, now: number): void {
    const blocks = blocksOf(bytes);
    if (!blocks) return this.break();
    for (const block of blocks) this.#onBlock(block, now);
  }

  /**
   * Segment messages received before this store existed, oldest first and
   * without a gap, the newest just now. Their wall-clock times are not known:
   * the manifest's availabilityStartTime is set from the newest block, which
   * arrived about `now`, as a live stream's blocks arrive at their media time.
   */
  replay(messages: readonly Uint8Array[], now: number): void {
    let newest: number | undefined;
    for (const bytes of messages) {
      const blocks = blocksOf(bytes);
      if (!blocks) {
        this.break();
        continue;
      }
      for (const block of blocks) {
        this.#onBlock(block, null);
        if (block.time >= 0) newest = block.time;
      }
    }
    if (newest !== undefined && this.#newest) this.#anchorAt(newest, now);
  }

  /** `now`: when it arrived, wall-clock ms; null while replaying (see replay). */
  #onBlock(block: Block, now: number | null): void {
    // Before media time 0 (a negative relative timecode in the first Cluster): no Cluster Timestamp, which is unsigned, can hold it.
    if (block.time < 0) return;
    if (this.#opensGop(block)) {
      if (this.#gop) this.#publish(this.#gop, block.time, now);
      this.#gop = { start: block.time, blocks: [], bytes: 0 };
    }
    const gop = this.#gop;
    if (!gop) return; // before the first keyframe: no segment can start here
    gop.blocks.push(block);
    gop.bytes += block.bytes.length;
    if (gop.bytes > this.#limits.maxBytes) {
      // Memory first: a GOP larger than the whole window is never served.
      this.dropped++;
      this.#gop = null;
    }
  }

  #opensGop(block: Block): boolean {
    const video = this.#header.videoTrack;
    if (video !== 0) return block.track === video && block.keyframe;
    const slot = Math.floor(block.time / ((AUDIO_SLOT_MS * this.#header.timescale) / 1000));
    const opens = this.#lastSlot !== undefined && slot !== this.#lastSlot;
    this.#lastSlot = slot;
    return opens;
  }

  #publish(gop: Gop, end: number, now: number | null): void {
    const d = end - gop.start;
    if (d <= 0) return void this.dropped++;
    const newest = this.#newest;
    // Time went back (a new timeline): the old segments would overlap the new ones.
    if (newest && gop.start < newest.t + newest.d) this.#reset();
    const segment = new DashSegment(gop.start, d, gop.blocks, gop.bytes);
    this.#segments.set(segment.t, segment);
    this.#bytes += segment.size;
    this.#newest = segment;
    this.#trim();
    if (now !== null) this.#anchorAt(end, now);
  }

  /** Oldest out while the window is longer than --buffer or larger than --buffer-mb; the newest stays. */
  #trim(): void {
    const { timescale } = this.#header;
    const newest = this.#newest!;
    const end = newest.t + newest.d;
    for (const [t, segment] of this.#segments) {
      if (segment === newest) break;
      const tooOld = ((end - t) * 1000) / timescale > this.#limits.maxAgeMs;
      if (!tooOld && this.#bytes <= this.#limits.maxBytes) break;
      this.#segments.delete(t);
      this.#bytes -= segment.size;
    }
  }

  /** availabilityStartTime: the newest segment became available now (DASH-IF IOP §4.3.3). */
  #anchorAt(end: number, now: number): void {
    const endMs = (end * 1000) / this.#header.timescale;
    if (this.#anchor === null || Math.abs(this.#anchor + endMs - now) > MAX_DRIFT_MS) this.#anchor = Math.round(now - endMs);
  }

  #reset(): void {
    this.#segments.clear();
    this.#bytes = 0;
    this.#newest = null;
    this.#anchor = null;
  }
}
