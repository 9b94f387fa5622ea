/**
 * One stream's Cluster children, as the scanner hands them over, into
 * pieces: reads each block's facts, places it on the stream's output
 * timeline and gives it to the piece builder. Other children (Void, CRC-32,
 * Position, PrevSize, …) describe the input's layout and are dropped. State
 * per stream, a few microseconds per block: it runs in the ingest's thread.
 */
import { CorruptStreamError, type TimelineCheckpoint } from '@mkvcast/shared';
import { readBlock } from './block.js';
import { PieceBuilder, type Piece } from './pieces.js';
import { Timeline } from './timeline.js';

/** What a pass (a new EBML header: a loop, a chained stream) sets, from its header. */
export interface PassRules {
  /** TrackNumber of the video track; 0 when the stream has none. */
  videoTrack: number;
  /** A block this many ticks or more after its piece's first block opens a new piece; 0: never. */
  splitInterval: number;
  /** DefaultDuration of the tracks that have one, in ticks. */
  frameTicks: ReadonlyMap<number, number>;
  /** Ticks per second, from the TimestampScale. */
  ticksPerSecond: number;
}

export class BlockForwarder {
  /** Input to output times; the offset is chosen again at each pass. */
  readonly #timeline: Timeline;
  readonly #builder = new PieceBuilder();
  /** The current input Cluster's Timestamp as read, ticks. */
  #clusterTimestamp = 0;

  /** `resumeEnd`: where the media a previous run of the source published ends, output ticks; `resumed`: its timeline then. */
  constructor(resumeEnd?: number, resumed?: TimelineCheckpoint) {
    this.#timeline = new Timeline(resumeEnd, resumed);
  }

  /** For the stream's checkpoint: its timeline's offset and where its pass started. */
  get timeline(): TimelineCheckpoint | undefined {
    return this.#timeline.checkpoint;
  }

  beginPass(rules: PassRules): void {
    this.#timeline.beginPass(rules.frameTicks, rules.ticksPerSecond);
    this.#builder.rules = { videoTrack: rules.videoTrack, splitInterval: rules.splitInterval };
  }

  clusterStart(timestamp: number): void {
    this.#clusterTimestamp = timestamp;
  }

  /** One child of the current Cluster; the pieces it closes go to `out`. */
  child(id: number, bytes: Buffer, out: Piece[]): void {
    const block = readBlock(id, bytes);
    if (block === null) return;
    const input = this.#clusterTimestamp + block.relative;
    const offset = this.#timeline.offsetFor(block.track, input, this.#clusterTimestamp);
    if (this.#timeline.delivered(block.track, input)) return;
    const clusterTimestamp = this.#clusterTimestamp + offset;
    if (clusterTimestamp < 0) {
      throw new CorruptStreamError(`a Cluster Timestamp (${this.#clusterTimestamp}) falls before the start of its stream`);
    }
    // The stream put it there (a Timestamp near 2^53, plus a block offset or a loop's): not a bug of ours.
    if (!Number.isSafeInteger(clusterTimestamp + Math.max(0, block.relative))) {
      throw new CorruptStreamError(`a block at Cluster Timestamp ${this.#clusterTimestamp} + ${block.relative} (+ ${offset}) is beyond 2^53 ticks`);
    }
    const end = this.#timeline.note(block.track, input, block.frames, block.duration);
    // Its duration can take it there too: its end becomes the stream's checkpointed end.
    if (!Number.isSafeInteger(end)) {
      throw new CorruptStreamError(`a block at Cluster Timestamp ${this.#clusterTimestamp} + ${block.relative} (+ ${offset}) ends beyond 2^53 ticks`);
    }
    const place = { clusterTimestamp, time: input + offset, end, track: block.track, keyframe: block.keyframe };
    this.#builder.add(bytes, place, out);
  }

  /** Closes the piece in progress: at the end of a live input's every chunk, so nothing waits for more input. */
  flush(out: Piece[]): void {
    this.#builder.flush(out);
  }

  /** Keeps the piece in progress open into the next input chunk (a paced input's: see StreamIngest). */
  hold(): void {
    this.#builder.hold();
  }
}
