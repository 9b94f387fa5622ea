import type { Readable } from 'node:stream';
import {
  CorruptStreamError,
  MKV_ID,
  readId,
  readSize,
  readUint,
  describeError,
  type CheckpointMessage,
  type HeaderMessage,
  type Logger,
  type StreamCheckpoint,
  type ScanEvent,
  MatroskaScanner,
} from '@mkvcast/shared';
import { buildLiveHeader, type LiveHeader } from './header.js';
import type { ClusterProcessor } from './clusterPool.js';
import type { ClusterPiece } from './cluster.js';
import { Pacer } from './pacer.js';
import type { Hub } from './hub.js';
import type { SessionSource } from './inputs/session.js';
import { matroskaBytes } from './inputs/remux.js';

/** Audio-only streams are cut about every second so players can join often. */
const AUDIO_SPLIT_MS = 1000;
/**
 * Streams with video are cut at least this often (between keyframes too). An
 * edge writes a Segment to its players one after the other, so the last of
 * 2000 players waits for the others' copies: with 1 s pieces that took the
 * latency p99 to 82 ms, with 250 ms pieces 44 ms (npm run bench, 4000 players,
 * 2 edges), for twice the CPU per delivered Gbit (0.044 → 0.10 core·s).
 */
const VIDEO_SPLIT_MS = 250;
/** Gap put between the last frame of one pass (or upstream session) and the next, ms. */
const REBASE_GAP_MS = 40;

type Phase = 'ebml' | 'header' | 'clusters';

export interface IngestOptions {
  /** Release media in real time (files); live inputs are taken as they come. */
  paced: boolean;
  /** Created by a publisher, not configured. */
  published: boolean;
  hub: Hub;
  processor: ClusterProcessor;
  log: Logger;
  /** Used to remux inputs in other containers, when given. */
  ffmpeg: string | null;
  /** Where the last run of the source left this stream: timestamps go on rising from there. */
  resume?: StreamCheckpoint;
  /** Told before each Segment goes out, so that a new source run can go on from it. */
  checkpoint: (message: CheckpointMessage) => void;
}

/**
 * One input, from bytes to published Segments: scan, build the live header,
 * cut Clusters at keyframes (on the cluster processor), keep timestamps
 * monotonic across loops and chained streams, pace, publish.
 */
export class StreamIngest {
  readonly #name: string;
  readonly #options: IngestOptions;
  readonly #hub: Hub;
  readonly #processor: ClusterProcessor;
  readonly #log: Logger;
  readonly #pacer: Pacer;
  /** The header as last sent in a checkpoint. */
  #checkpointed: HeaderMessage | undefined;
  readonly #abort = new AbortController();
  #phase: Phase = 'ebml';
  #ebmlHeader: Buffer | undefined;
  #docType = '';
  #elements = new Map<number, Buffer>();
  #header: LiveHeader | undefined;
  /** Ticks added to input timestamps; re-chosen when a new EBML header starts (loop, chained stream). */
  #offset = 0;
  #rebase = false;
  /** First output timestamp of the stream, ticks: media time 0. */
  #origin: number | undefined;
  /** Largest output timestamp so far, ticks. */
  #last = 0;
  /** Clusters ingested, over all sessions. */
  #clusters = 0;

  constructor(name: string, options: IngestOptions) {
    this.#name = name;
    this.#options = options;
    this.#hub = options.hub;
    this.#processor = options.processor;
    this.#log = options.log;
    this.#pacer = new Pacer(options.paced);
    const resume = options.resume;
    if (resume) {
      // The first Cluster of this run is rebased to follow the last one published.
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

  stop(): void {
    this.#abort.abort();
  }

  /** Resolves at the end of the input; rejects with its error. */
  /**
   * Ingests session after session until the source has no more. Resolves then;
   * rejects when a session fails and `sessionErrorsEnd` (files, stdin), where
   * live inputs (publishers, upstreams) only log it and wait for the next.
   */
  async run(source: SessionSource, sessionErrorsEnd: boolean): Promise<void> {
    const signal = this.#abort.signal;
    const stop = (): void => source.close();
    signal.addEventListener('abort', stop);
    try {
      for (let session = await source.next(signal); session; session = await source.next(signal)) {
        const clusters = this.#clusters;
        try {
          await this.#pass(session.stream);
          if (this.#clusters === clusters && sessionErrorsEnd) {
            throw new CorruptStreamError('the input ended before its first Cluster');
          }
          session.finish?.();
        } catch (err) {
          session.finish?.(err);
          if (sessionErrorsEnd || signal.aborted) throw err;
          this.#log.warn(`stream '${this.name}': ${session.label}: ${describeError(err)}`);
        }
        if (signal.aborted) return;
      }
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }

  async #pass(stream: Readable): Promise<void> {
    const scanner = new MatroskaScanner();
    const signal = this.#abort.signal;
    try {
      for await (const chunk of matroskaBytes(stream, this.#options.ffmpeg)) {
        for (const event of scanner.push(chunk)) await this.#onEvent(event);
        if (signal.aborted) return;
      }
      for (const event of scanner.end()) await this.#onEvent(event);
    } finally {
      if (stream !== process.stdin) stream.destroy();
    }
  }

  async #onEvent(event: ScanEvent): Promise<void> {
    switch (event.kind) {
      case 'ebml':
        this.#ebmlHeader = event.bytes;
        this.#docType = event.docType;
        this.#elements = new Map();
        this.#phase = 'header';
        this.#rebase = this.#origin !== undefined;
        return;
      case 'segment':
        return;
      case 'element':
        if (this.#phase === 'header') this.#elements.set(event.id, event.bytes);
        return;
      case 'cluster':
        return this.#onCluster(event.bytes);
    }
  }

  async #onCluster(bytes: Buffer): Promise<void> {
    const scannedAt = Date.now();
    this.#clusters++;
    if (this.#phase === 'header') this.#openHeader();
    const header = this.#header!;
    if (this.#rebase) {
      const gap = Math.round((REBASE_GAP_MS * 1e6) / header.timestampScale);
      this.#offset = this.#last + gap - clusterTimestamp(bytes);
      this.#rebase = false;
    }
    const pieces = await this.#processor.process({
      bytes,
      videoTrack: header.videoTrack,
      timestampOffset: this.#offset,
      splitInterval: Math.round(((header.videoTrack ? VIDEO_SPLIT_MS : AUDIO_SPLIT_MS) * 1e6) / header.timestampScale),
    });
    for (const piece of pieces) await this.#publish(piece, header, scannedAt);
  }

  #openHeader(): void {
    if (!this.#ebmlHeader) throw new CorruptStreamError('a Cluster came before the EBML header');
    const header = buildLiveHeader(this.#ebmlHeader, this.#docType, this.#elements);
    this.#header = header;
    this.#phase = 'clusters';
    if (!this.#hub.openStream(this.name, header)) return;
    const codecs = header.tracks.map((t) => `${t.type} ${t.codec}`).join(', ');
    this.#log.info(`stream '${this.name}': ${header.docType}, ${codecs}`);
  }

  /**
   * Publishes a piece when its media time is due. `arrivedAt` (for latency
   * figures) is when the source had the bytes: read, or released by the pacer.
   */
  async #publish(piece: ClusterPiece, header: LiveHeader, scannedAt: number): Promise<void> {
    this.#origin ??= piece.timestamp;
    this.#last = Math.max(this.#last, piece.lastTimestamp);
    const ts = ((piece.timestamp - this.#origin) * header.timestampScale) / 1e6;
    const waited = await this.#pacer.wait(ts, this.#abort.signal).catch(() => false);
    if (this.#abort.signal.aborted) return;
    this.#checkpoint();
    this.#hub.publish(this.name, ts, piece.keyframe, piece.bytes, waited ? Date.now() : scannedAt);
  }

  /** The stream's state once the next Segment is out; the header only when it changed. */
  #checkpoint(): void {
    const state = this.#hub.state(this.name);
    if (!state) return;
    const { header, nextSeq } = state;
    const changed = header !== this.#checkpointed;
    this.#checkpointed = header;
    this.#options.checkpoint({
      type: 'checkpoint',
      stream: this.name,
      published: this.#options.published,
      generation: header.generation,
      docType: header.docType,
      tracks: header.tracks,
      ...(changed ? { header: Buffer.from(header.bytes).toString('base64') } : {}),
      nextSeq: nextSeq + 1,
      lastTicks: this.#last,
      originTicks: this.#origin!,
    });
  }
}

/** The Timestamp child of a Cluster (RFC 9559 §5.1.3.1), read without parsing the blocks. */
export function clusterTimestamp(cluster: Uint8Array): number {
  const id = readId(cluster, 0);
  const size = typeof id === 'number' ? id : readSize(cluster, id.length);
  if (typeof id === 'number' || typeof size === 'number') throw new CorruptStreamError('bad Cluster header');
  let pos = id.length + size.length;
  while (pos < cluster.length) {
    const childId = readId(cluster, pos);
    if (typeof childId === 'number') break;
    const childSize = readSize(cluster, pos + childId.length);
    if (typeof childSize === 'number' || childSize.value < 0) break;
    const body = pos + childId.length + childSize.length;
    if (childId.value === MKV_ID.Timestamp && body + childSize.value <= cluster.length) {
      return readUint(cluster, body, childSize.value);
    }
    pos = body + childSize.value;
  }
  throw new CorruptStreamError('a Cluster has no Timestamp');
}
