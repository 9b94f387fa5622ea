import type { TimelineCheckpoint } from '@mkvcast/shared';

/**
 * A new pass continues the last one's timeline, offset kept, when its first
 * block lands (at the current offset) from this far before where the media
 * ends (an origin starts a new puller at its newest keyframe, up to a GOP
 * back, and a second origin may lag the first by a few seconds)…
 */
const CONTINUE_BEFORE_S = 15;
/** …to this far after it (the time an upstream took to come back). */
const CONTINUE_AFTER_S = 30;

/**
 * A stream's output timeline: the offset added to input timestamps, chosen
 * anew at each seam (a `--loop` pass, a chained stream, a publisher or
 * upstream back, a restarted source) so that timestamps keep rising and frame
 * durations continue across it: the next pass starts where the last ended,
 * with no hole a player would stall at.
 *
 * A pass that goes on from where the last one ended, on the same timestamps
 * (an edge host back on its origin, or failed over to another origin of the
 * same camera), keeps the offset instead: every host that pulls a stream
 * numbers it alike, whenever it reconnected. What the new pass replays of
 * what went out already is dropped.
 */
export class Timeline {
  /** Ticks added to input timestamps in the current pass. */
  #offset = 0;
  /** A seam was met: the next block chooses the offset. */
  #seam = false;
  /** Output ticks where each track's media ends: its furthest block's time plus duration. */
  readonly #ends = new Map<number, number>();
  /** Where all media ends, output ticks; undefined before any (a restarted source starts from its checkpoint's). */
  #end: number | undefined;
  /** Input time of each track's first block, in this pass and the one before. */
  #firsts = new Map<number, number>();
  #previousFirsts = new Map<number, number>();
  /** Per track in this pass: the last block's input time, and the smallest step forward between two blocks. */
  #lastInput = new Map<number, number>();
  #step = new Map<number, number>();
  /** Per track: DefaultDuration in ticks, from the header. */
  #frameTicks: ReadonlyMap<number, number> = new Map();
  #ticksPerSecond = 1000;
  /** After a seam that kept the offset: per track, where its media went out to; its blocks before that are dropped. */
  #catchUp = new Map<number, number>();
  /** The same for tracks with no end of their own: after a restart, where all media ended. */
  #catchUpAll: number | undefined;
  /** Tracks past their catch-up in this pass. */
  #caughtUp = new Set<number>();
  /** A restarted source: the last run's offset and where its pass started, output ticks. */
  #resumed: TimelineCheckpoint | undefined;

  /**
   * `resumeEnd`: where the media a previous run of the source published
   * ends, in output ticks; `resumed`: its offset then, when a new pass on
   * the same timestamps may keep it.
   */
  constructor(resumeEnd?: number, resumed?: TimelineCheckpoint) {
    this.#end = resumeEnd;
    this.#resumed = resumeEnd === undefined ? undefined : resumed;
  }

  get offset(): number {
    return this.#offset;
  }

  /** What a restarted source needs to keep this timeline; undefined before the first block. */
  get checkpoint(): TimelineCheckpoint | undefined {
    if (this.#firsts.size === 0) return undefined;
    return { offset: this.#offset, passStart: Math.min(...this.#firsts.values()) + this.#offset };
  }

  /** A new EBML header (a new pass, or a new stream on the same input). Anything before it makes it a seam. */
  beginPass(frameTicks: ReadonlyMap<number, number>, ticksPerSecond = 1000): void {
    this.#frameTicks = frameTicks;
    this.#ticksPerSecond = ticksPerSecond;
    this.#catchUp = new Map();
    this.#catchUpAll = undefined;
    this.#caughtUp = new Set();
    this.#seam = this.#end !== undefined;
    if (this.#firsts.size > 0) this.#previousFirsts = this.#firsts;
    this.#firsts = new Map();
    this.#lastInput = new Map();
    this.#step = new Map();
  }

  /**
   * The offset for a block of `track` at input time `time` in a Cluster whose
   * input Timestamp is `clusterTimestamp`: at a seam, the first block chooses it.
   */
  offsetFor(track: number, time: number, clusterTimestamp: number): number {
    if (this.#seam) {
      this.#seam = false;
      if (this.#continues(track, time)) {
        this.#catchUp = new Map(this.#ends);
        return this.#offset;
      }
      if (this.#resumes(time)) return this.#offset;
      // A Cluster Timestamp is unsigned (RFC 9559 §5.1.3.1): never write one below 0.
      this.#offset = Math.max(this.#seamOffset(track, time), -clusterTimestamp);
    }
    return this.#offset;
  }

  /**
   * Whether a block of `track` at input time `time`, the first of a new pass,
   * carries on the last pass's timeline: at the current offset it lands near
   * where the media ends, and after where the last pass started. A pass that
   * starts again where the last one started (a looped file, a publisher
   * from 0, a chained stream) is a new timeline, however short.
   */
  #continues(track: number, time: number): boolean {
    if (this.#ends.size === 0 || this.#end === undefined) return false; // a restarted source does not know the offset it had
    const lastStart = this.#previousFirsts.get(track) ?? Math.min(...this.#previousFirsts.values());
    return this.#near(time + this.#offset, lastStart + this.#offset);
  }

  /**
   * A restarted source's first pass, on the timestamps the last run had (an
   * upstream's): the last run's offset is kept when the block lands near
   * where the media ended and after where the last run's pass started. Only
   * where all media ended is known, a promise ahead of it: everything
   * before it is taken as sent.
   */
  #resumes(time: number): boolean {
    const resumed = this.#resumed;
    this.#resumed = undefined;
    if (!resumed || this.#ends.size > 0 || this.#end === undefined) return false;
    if (!this.#near(time + resumed.offset, resumed.passStart)) return false;
    this.#offset = resumed.offset;
    this.#catchUpAll = this.#end;
    return true;
  }

  /** Within the window around where the media ends (output ticks), and after `lastStart`. */
  #near(at: number, lastStart: number): boolean {
    if (!(at > lastStart)) return false;
    return at >= this.#end! - CONTINUE_BEFORE_S * this.#ticksPerSecond && at <= this.#end! + CONTINUE_AFTER_S * this.#ticksPerSecond;
  }

  /**
   * Whether a block (its offset chosen) went out already: after a seam that
   * kept the offset, a track's blocks before where it ended are a replay.
   * Per track, until its first block past that. (With B-frames, one shown
   * before that end but decoded after the last block that went out is lost:
   * a frame or two at the seam.)
   */
  delivered(track: number, time: number): boolean {
    let end = this.#catchUp.get(track);
    if (end === undefined && this.#catchUpAll !== undefined && !this.#caughtUp.has(track)) end = this.#catchUpAll;
    if (end === undefined) return false;
    if (time + this.#offset < end) return true;
    this.#catchUp.delete(track);
    this.#caughtUp.add(track);
    return false;
  }

  /**
   * One offset moves every track alike (per-track shifts would pull audio
   * and video apart a little more at every seam). It is chosen so that the
   * track whose media ends last goes on without a hole and no track steps
   * back: each track's first block lands at or after its own end, and the
   * tracks that ended earlier keep their (smaller) hole, what the input had
   * between its tracks' ends. Each track's first block is expected as far
   * from this one as in the pass before (a looped file: exactly); with
   * nothing to go by, at this block's time.
   */
  #seamOffset(track: number, time: number): number {
    if (this.#ends.size === 0) return this.#end! - time; // a restarted source knows only where all media ended
    const anchor = this.#previousFirsts.get(track);
    let offset = -Infinity;
    for (const [other, end] of this.#ends) {
      const first = this.#previousFirsts.get(other);
      const expected = anchor !== undefined && first !== undefined ? time + (first - anchor) : time;
      offset = Math.max(offset, end - expected);
    }
    return offset;
  }

  /**
   * Records a block placed at input time `time` (offset chosen): its track's
   * first time, the step between its frames, where its media ends. Returns
   * that end in output ticks. A block lasts its BlockDuration, or its
   * frames times the track's DefaultDuration, or the track's frame step as
   * seen so far (the smallest step forward, which B-frames' reordering and
   * laced blocks leave right).
   */
  note(track: number, time: number, frames: number, blockDuration: number): number {
    if (!this.#firsts.has(track)) this.#firsts.set(track, time);
    const last = this.#lastInput.get(track);
    if (last !== undefined && time > last) this.#step.set(track, Math.min(this.#step.get(track) ?? Infinity, time - last));
    this.#lastInput.set(track, time);
    const defaultTicks = this.#frameTicks.get(track);
    const duration = blockDuration >= 0 ? blockDuration : defaultTicks !== undefined ? defaultTicks * frames : (this.#step.get(track) ?? 0);
    const end = time + this.#offset + duration;
    if (end > (this.#ends.get(track) ?? -Infinity)) this.#ends.set(track, end);
    if (this.#end === undefined || end > this.#end) this.#end = end;
    return end;
  }
}
