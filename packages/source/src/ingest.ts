import {
  CorruptStreamError,
  MkvcastError,
  describeError,
  type CheckpointMessage,
  type HeaderMessage,
  type Logger,
  type StreamCheckpoint,
  type StreamInput,
  type ScanEvent,
  MatroskaScanner,
} from '@mkvcast/shared';
import { assembleLiveHeader, headerElements, type LiveHeader } from './header.js';
import type { HeaderBuilder } from './headerBuilder.js';
import { BlockForwarder } from './forwarder.js';
import type { Piece } from './pieces.js';
import { Pacer } from './pacer.js';
import type { Hub } from './hub.js';
import type { SessionBytes, SessionSource } from './inputs/session.js';
import { matroskaBytes } from './inputs/remux.js';

/**
 * Audio-only streams: every frame is a key; a piece spans at most about a
 * second, so players can join often. (Live inputs cut far more often: every
 * input chunk closes a piece.)
 */
const AUDIO_SPLIT_MS = 1000;
/**
 * Streams with video: a piece spans at most this much media (between
 * keyframes too), which matters for files, read 64 KiB at a time. An edge
 * writes a Segment to its players one after the other, so the last of 2000
 * players waits for the others' copies: with 1 s pieces that took the
 * latency p99 to 82 ms, with 250 ms pieces 44 ms (npm run bench, 4000
 * players, 2 edges), for twice the CPU per delivered Gbit (0.044 → 0.10 core·s).
 * Paced files are released on a grid of the same step (PACE_STEP_MS).
 */
export const VIDEO_SPLIT_MS = 250;

type Phase = 'ebml' | 'header' | 'clusters';

/** How far ahead a checkpoint promises (see StreamIngest.#checkpoint). */
const CHECKPOINT_AHEAD_MS = 1000;
const CHECKPOINT_AHEAD_SEGMENTS = 256;

export interface IngestOptions {
  /** Release media in real time (files); live inputs are taken as they come. */
  paced: boolean;
  /** Created by a publisher, not configured. */
  published: boolean;
  hub: Hub;
  log: Logger;
  /** Used to remux inputs in other containers, when given. */
  ffmpeg: string | null;
  /** Builds the live header (the source's pool of worker threads; tests: in this thread). */
  headers: HeaderBuilder;
  /** Where the last run of the source left this stream: timestamps go on rising from there. */
  resume?: StreamCheckpoint;
  /** Told before each Segment goes out, so that a new source run can go on from it. */
  checkpoint: (message: CheckpointMessage) => void;
  /** Told when an input session starts (for the stats), and with null when it ends. */
  input?: (input: StreamInput | null) => void;
}

/**
 * One input, from bytes to published Segments: scan, build the live header,
 * forward each block as it arrives in small Clusters that a keyframe always
 * opens, keep timestamps monotonic across loops and chained streams, pace,
 * publish.
 */
export class StreamIngest {
  readonly #name: string;
  readonly #options: IngestOptions;
  readonly #hub: Hub;
  readonly #log: Logger;
  readonly #inputPacer: Pacer;
  /** The input's pacer, or the session's own when it asked to be paced. */
  #pacer: Pacer;
  /** The header as last sent in a checkpoint. */
  #checkpointed: HeaderMessage | undefined;
  /** What the last checkpoint promised: no Segment at or past this seq, or ending past these ticks. */
  #promised = { seq: -1, ticks: -1 };
  readonly #abort = new AbortController();
  #phase: Phase = 'ebml';
  #ebmlHeader: Buffer | undefined;
  #docType = '';
  #elements = new Map<number, Buffer>();
  #header: LiveHeader | undefined;
  /** The Info and Tracks last decoded, and the header built from them. */
  #decoded: { info: Buffer; tracks: Buffer; header: LiveHeader } | undefined;
  /** Blocks to pieces, on a timeline whose offset is chosen again after each new EBML header (loop, chained stream). */
  readonly #forwarder: BlockForwarder;
  /** First output timestamp of the stream, ticks: media time 0. */
  #origin: number | undefined;
  /** Where the published media ends (a block's time plus its duration, the furthest), output ticks. */
  #last = 0;
  /** Clusters ingested, over all sessions. */
  #clusters = 0;
  /** Pieces built from the current input chunk, not yet published. */
  #pending: Piece[] = [];

  constructor(name: string, options: IngestOptions) {
    this.#name = name;
    this.#options = options;
    this.#hub = options.hub;
    this.#log = options.log;
    this.#inputPacer = new Pacer(options.paced);
    this.#pacer = this.#inputPacer;
    const resume = options.resume;
    // A file resumes at its byte position and places its first block where the promise ends, as it always did.
    this.#forwarder = new BlockForwarder(resume?.lastTicks, resume?.file ? undefined : resume?.timeline);
    if (resume) {
      // The first block of this run is placed where the media published before ends.
      this.#origin = resume.originTicks;
      this.#last = resume.lastTicks;
    }
  }

  get name(): string {
    return this.#name;
  }

  /** stop() was called: the input did not end by itself. */
  get stopped(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Stops ingesting; a `reason` (an operator's cut) also cuts off the session in progress. */
  stop(reason?: Error): void {
    this.#abort.abort(reason);
    this.#pacer.cancel();
    this.#inputPacer.cancel();
  }

  /** Resolves at the end of the input; rejects with its error. */
  /**
   * Ingests session after session until the source has no more. Resolves then;
   * rejects when a session fails and `sessionErrorsEnd` (files, stdin), where
   * live inputs (publishers, upstreams) only log it and wait for the next.
   */
  async run(source: SessionSource, sessionErrorsEnd: boolean): Promise<void> {
    const signal = this.#abort.signal;
    const stop = (): void => source.close(signal.reason instanceof MkvcastError ? signal.reason : undefined);
    signal.addEventListener('abort', stop);
    try {
      for (let session = await source.next(signal); session; session = await source.next(signal)) {
        const clusters = this.#clusters;
        this.#options.input?.({ kind: session.kind ?? 'file', label: session.label });
        // A paced session's clock starts with its first piece.
        this.#pacer = session.paced ? new Pacer(true) : this.#inputPacer;
        if (signal.aborted) this.#pacer.cancel();
        try {
          await this.#pass(session.stream, session.path);
          if (this.#clusters === clusters && sessionErrorsEnd) {
            throw new CorruptStreamError('the input ended before its first Cluster');
          }
          session.finish?.();
        } catch (err) {
          session.finish?.(err);
          if (sessionErrorsEnd || signal.aborted) throw err;
          this.#log.warn(`stream '${this.name}': ${session.label}: ${describeError(err)}`);
        } finally {
          this.#options.input?.(null);
        }
        if (signal.aborted) return;
      }
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  async #pass(stream: SessionBytes, path?: string): Promise<void> {
    // Blocks are views until the pieces they go in are built, at the end of each #ingest: before the next push.
    const scanner = new MatroskaScanner({ viewChildren: true });
    const signal = this.#abort.signal;
    try {
      for await (const chunk of matroskaBytes(stream, this.#options.ffmpeg, path)) {
        await this.#ingest(scanner.push(chunk), Date.now(), false);
        if (signal.aborted) return;
      }
      await this.#ingest(scanner.end(), Date.now(), true);
    } finally {
      if (stream !== process.stdin) stream.destroy();
    }
  }

  /**
   * The events of one input chunk (`last`: the pass's end). The blocks it
   * completed go out as pieces before the next chunk is read: nothing waits
   * for a muxer's Cluster to close, and what arrived together travels
   * together. A paced input's pieces wait for their media time anyway, so
   * the piece open at the end of a chunk goes on into the next: its pieces
   * are cut as if the input came in one chunk, not once more at every 64 KiB
   * read (the bench's clip: 4.65 pieces a second, now 4.05), and each piece
   * costs the source and every edge the same whatever its size.
   */
  async #ingest(events: ScanEvent[], arrivedAt: number, last: boolean): Promise<void> {
    for (const event of events) {
      if (event.kind === 'cluster-start' && this.#phase === 'header') {
        // Pieces of the stream before this header go out before it does.
        await this.#publishPending(arrivedAt);
        await this.#openHeader();
        if (this.#abort.signal.aborted) return;
      }
      this.#onEvent(event);
    }
    if (this.#pacer.paced && !last) this.#forwarder.hold();
    else this.#forwarder.flush(this.#pending);
    await this.#publishPending(arrivedAt);
  }

  #onEvent(event: ScanEvent): void {
    switch (event.kind) {
      case 'ebml':
        this.#forwarder.flush(this.#pending);
        this.#ebmlHeader = event.bytes;
        this.#docType = event.docType;
        this.#elements = new Map();
        this.#phase = 'header';
        return;
      case 'segment':
      case 'cluster-end':
        return;
      case 'element':
        if (this.#phase === 'header') this.#elements.set(event.id, event.bytes);
        return;
      case 'cluster-start':
        this.#clusters++;
        return this.#forwarder.clusterStart(event.timestamp);
      case 'cluster-child':
        return this.#forwarder.child(event.id, event.bytes, this.#pending);
    }
  }

  /** Publishes the pieces built so far, in order, each when its media time is due. */
  async #publishPending(arrivedAt: number): Promise<void> {
    const pieces = this.#pending;
    if (pieces.length === 0) return;
    this.#pending = [];
    for (const piece of pieces) await this.#publish(piece, this.#header!, arrivedAt);
  }

  async #openHeader(): Promise<void> {
    if (!this.#ebmlHeader) throw new CorruptStreamError('a Cluster came before the EBML header');
    const header = await this.#buildHeader(this.#ebmlHeader);
    if (this.#abort.signal.aborted) return;
    this.#header = header;
    this.#phase = 'clusters';
    const frameTicks = new Map([...header.defaultDurations].map(([track, ns]) => [track, Math.round(ns / header.timestampScale)]));
    const splitMs = header.videoTrack ? VIDEO_SPLIT_MS : AUDIO_SPLIT_MS;
    const splitInterval = Math.round((splitMs * 1e6) / header.timestampScale);
    this.#forwarder.beginPass({ videoTrack: header.videoTrack, splitInterval, frameTicks, ticksPerSecond: 1e9 / header.timestampScale });
    if (!this.#hub.openStream(this.name, header)) return;
    const codecs = header.tracks.map((t) => `${t.type} ${t.codec}`).join(', ');
    this.#log.info(`stream '${this.name}': ${header.docType}, ${codecs}`);
  }

  /**
   * A looped file, or a publisher back with the same encoder, brings the
   * Info and Tracks it had: decoded once, not on a worker at every pass (its
   * thread may have ended, and takes ~0.3 s to start again).
   */
  async #buildHeader(ebmlHeader: Buffer): Promise<LiveHeader> {
    const { info, tracks } = headerElements(this.#elements);
    const last = this.#decoded;
    if (last && last.info.equals(info) && last.tracks.equals(tracks)) {
      return assembleLiveHeader(ebmlHeader, this.#docType, this.#elements, last.header);
    }
    const header = await this.#options.headers.build(ebmlHeader, this.#docType, this.#elements);
    this.#decoded = { info, tracks, header };
    return header;
  }

  /**
   * Publishes a piece when its media time is due. Latency figures count from
   * when the source had it to send: a live piece from when it was read, a
   * paced one from its release. (Not the read of its chunk, a second of media
   * before; nor only when it had to wait: a piece due in the step another was
   * released in goes out with it, without waiting.)
   */
  async #publish(piece: Piece, header: LiveHeader, scannedAt: number): Promise<void> {
    this.#origin ??= piece.timestamp;
    this.#last = Math.max(this.#last, piece.end);
    const ts = ((piece.timestamp - this.#origin) * header.timestampScale) / 1e6;
    await this.#pacer.wait(ts);
    if (this.#abort.signal.aborted) return;
    this.#checkpoint(header);
    this.#hub.publish(this.name, ts, piece.keyframe, piece.bytes, this.#pacer.paced ? Date.now() : scannedAt);
  }

  /**
   * Tells the master how far this stream will have gone once the next Segment
   * is out, before it goes. A checkpoint promises ahead (CHECKPOINT_AHEAD_MS
   * of media, CHECKPOINT_AHEAD_SEGMENTS numbers), so the next one is due only
   * when a Segment would break that promise: about one message a second, not
   * one per piece (a piece per frame made them the master's main work). A
   * restarted source starts from the promise: timestamps and numbers skip
   * ahead a little, and never go back.
   */
  #checkpoint(live: LiveHeader): void {
    const state = this.#hub.state(this.name);
    if (!state) return;
    const { header, nextSeq } = state;
    const changed = header !== this.#checkpointed;
    if (!changed && nextSeq < this.#promised.seq && this.#last <= this.#promised.ticks) return;
    this.#checkpointed = header;
    this.#promised = {
      seq: nextSeq + CHECKPOINT_AHEAD_SEGMENTS,
      ticks: this.#last + Math.round((CHECKPOINT_AHEAD_MS * 1e6) / live.timestampScale),
    };
    this.#options.checkpoint({
      type: 'checkpoint',
      stream: this.name,
      published: this.#options.published,
      generation: header.generation,
      docType: header.docType,
      tracks: header.tracks,
      ...(changed ? { header: Buffer.from(header.bytes).toString('base64') } : {}),
      nextSeq: this.#promised.seq,
      lastTicks: this.#promised.ticks,
      originTicks: this.#origin!,
      ...(this.#forwarder.timeline ? { timeline: this.#forwarder.timeline } : {}),
    });
  }
}
