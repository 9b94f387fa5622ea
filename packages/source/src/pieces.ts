/**
 * Turns a stream's blocks, as they arrive, into pieces: small self-contained
 * Clusters (known size, Timestamp, the blocks) that go to the edges at once.
 * A video keyframe always opens a new piece, unless the piece so far holds no
 * video (audio the muxer wrote just before it rides along): the first video
 * frame of every piece a player may start on is a keyframe.
 *
 * The work per block is a few comparisons and, per piece, one copy of its
 * bytes: far less than the 50–100 µs a piscina task costs, so it runs in the
 * source's thread (the hop to a worker only paid while whole Clusters of
 * seconds were split and rewritten at once).
 */
import { MKV_ID, encodeId, encodeSize8, encodeUintElement } from '@mkvcast/shared';

export interface Piece {
  /** A Cluster of known size: its Timestamp first, then its blocks as received. */
  bytes: Buffer;
  /** Output time of its first block, in ticks: where the pacer and the ring place it. */
  timestamp: number;
  /** A player may start here: its first video block is a keyframe (audio-only streams: always). */
  keyframe: boolean;
  /** Where its media ends: the largest block time plus duration, in output ticks. */
  end: number;
}

export interface PieceRules {
  /** TrackNumber of the video track; 0 when the stream has none. */
  videoTrack: number;
  /** A block this many ticks or more after its piece's first block opens a new piece; 0: never. */
  splitInterval: number;
}

/** Where a block stands: all times in output ticks. */
export interface BlockPlace {
  /** The Timestamp of the Cluster it came in, as written. */
  clusterTimestamp: number;
  /** Its own time: the Cluster Timestamp plus its relative timestamp. */
  time: number;
  /** Where it ends: its time plus its duration, as well as known. */
  end: number;
  track: number;
  keyframe: boolean;
}

const CLUSTER_ID = encodeId(MKV_ID.Cluster);
/** Cluster ID + 8-byte size VINT: the fixed head of every piece. */
const HEAD_LENGTH = CLUSTER_ID.length + 8;

/** One per stream. Pieces never span two input Clusters' timestamps, nor a flush. */
export class PieceBuilder {
  #rules: PieceRules = { videoTrack: 0, splitInterval: 0 };
  /** The blocks of the piece in progress, and their bytes in all. */
  #blocks: Uint8Array[] = [];
  #length = 0;
  /** Its Cluster Timestamp (output ticks), its first block's time, whether a player may start on it. */
  #clusterTimestamp = 0;
  #start = 0;
  #keyframe = false;
  #end = 0;
  #hasVideo = false;

  /** Rules of the stream's current header (a new pass or chained stream may bring new tracks). */
  set rules(rules: PieceRules) {
    this.#rules = rules;
  }

  /**
   * Adds one block (SimpleBlock or BlockGroup, as received). Its Cluster
   * Timestamp, its own time and where it ends are output ticks. Pieces it
   * closes go to `out`.
   */
  add(block: Uint8Array, at: BlockPlace, out: Piece[]): void {
    const { clusterTimestamp, time, track, keyframe } = at;
    const { videoTrack, splitInterval } = this.#rules;
    const video = videoTrack !== 0 && track === videoTrack;
    if (this.#blocks.length > 0) {
      const cut =
        (video && keyframe && this.#hasVideo) ||
        clusterTimestamp !== this.#clusterTimestamp ||
        (splitInterval > 0 && time - this.#start >= splitInterval);
      if (cut) this.flush(out);
    }
    if (this.#blocks.length === 0) {
      this.#clusterTimestamp = clusterTimestamp;
      this.#start = time;
      this.#keyframe = videoTrack === 0;
      this.#hasVideo = false;
      this.#end = at.end;
    }
    if (video && !this.#hasVideo) {
      this.#hasVideo = true;
      this.#keyframe = keyframe;
    }
    this.#end = Math.max(this.#end, at.end);
    this.#blocks.push(block);
    this.#length += block.length;
  }

  /**
   * Keeps the piece in progress open past the end of an input chunk: its
   * blocks are views of the chunk's buffer, which the next read reuses, so
   * they are copied into one buffer of its own (a few KB; at most one piece).
   */
  hold(): void {
    if (this.#blocks.length === 0) return;
    const own = Buffer.allocUnsafe(this.#length);
    let pos = 0;
    for (const block of this.#blocks) {
      own.set(block, pos);
      pos += block.length;
    }
    this.#blocks = [own];
  }

  /** Closes the piece in progress, if it has a block: at the end of a live input's every chunk, so nothing waits for more input. */
  flush(out: Piece[]): void {
    if (this.#blocks.length === 0) return;
    const timestamp = encodeUintElement(MKV_ID.Timestamp, this.#clusterTimestamp);
    const bodyLength = timestamp.length + this.#length;
    const bytes = Buffer.allocUnsafe(HEAD_LENGTH + bodyLength);
    bytes.set(CLUSTER_ID, 0);
    bytes.set(encodeSize8(bodyLength), CLUSTER_ID.length);
    bytes.set(timestamp, HEAD_LENGTH);
    let pos = HEAD_LENGTH + timestamp.length;
    for (const block of this.#blocks) {
      bytes.set(block, pos);
      pos += block.length;
    }
    out.push({ bytes, timestamp: this.#start, keyframe: this.#keyframe, end: this.#end });
    this.#blocks = [];
    this.#length = 0;
  }
}
