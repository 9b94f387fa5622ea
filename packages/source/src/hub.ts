import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import {
  Channel,
  PROTOCOL_VERSION,
  SegmentRing,
  encodeFrame,
  encodeSegmentFrame,
  sameTracks,
  type EdgeMessage,
  type HeaderMessage,
  type HelloMessage,
  type Logger,
  type RingEntry,
  type SourceConfig,
  type SourceMessage,
  type SourceStats,
  type SourceStreamInfo,
  type StreamInput,
  type StreamCheckpoint,
  MkvcastError,
  ProtocolError,
  startHandleReading,
  stopHandleReading,
} from '@mkvcast/shared';
import type { LiveHeader } from './header.js';

interface HubStream {
  name: string;
  header: HeaderMessage;
  ring: SegmentRing;
  nextSeq: number;
  segments: number;
  bytesIn: number;
  /** When this source run opened it, ms since the epoch. */
  openedAt: number;
}

/** Bytes the outbox gathers at most before it goes out ahead of its window (see Hub.#outbox). */
export const OUTBOX_MAX_BYTES = 1 << 20;

/** Ended stream names whose totals the metrics remember. */
const MAX_ENDED_TOTALS = 1024;

interface EdgeLink {
  channel: Channel<EdgeMessage, SourceMessage>;
  edgeId: number | null;
}

/**
 * The source's side of the wire: a Unix socket server that every edge
 * connects to. Holds each stream's header and a ring of recent Segments, and
 * sends each Segment to every edge, encoded once.
 */
export class Hub {
  readonly #server: Server;
  #config: SourceConfig;
  readonly #log: Logger;
  readonly #epoch = randomUUID();
  readonly #streams = new Map<string, HubStream>();
  readonly #edges = new Set<EdgeLink>();
  /** Each stream's current input session, for the stats: set before its header exists. */
  readonly #inputs = new Map<string, StreamInput>();
  #edgesDropped = 0;
  /** What ended streams took in, for the metrics' totals. */
  readonly #ended = { bytesIn: new Map<string, number>(), segments: new Map<string, number>() };
  /**
   * Frames (and Segment frame parts) for every edge, sent together: what the
   * inputs give within the latency budget (--max-delay) goes to an edge in one
   * write, which the edge writes to each player in one write. With no budget,
   * what one turn of the event loop gives (one read of an input, the pieces of
   * all paced files due at one tick). Bounded by OUTBOX_MAX_BYTES: past it, it
   * goes out at once.
   */
  #outbox: Uint8Array[] = [];
  #outboxBytes = 0;
  #flushScheduled = false;
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #flushNow = (): void => this.#flush();
  /** Live inputs' sockets read once per window (see holdReads). */
  readonly #held = new Set<Socket>();
  /** Every --max-delay ms while any socket is held: their reads, then the outbox out. */
  #tick: NodeJS.Timeout | undefined;

  private constructor(server: Server, config: SourceConfig, log: Logger) {
    this.#server = server;
    this.#config = config;
    this.#log = log;
    for (const checkpoint of config.restore) this.#restore(checkpoint);
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /**
   * A stream the last run of the source left live, with the header and
   * generation the edges have: they keep its players, who resume at the
   * next keyframe, and its sequence numbers go on.
   */
  #restore(checkpoint: StreamCheckpoint): void {
    const header: HeaderMessage = {
      type: 'header',
      stream: checkpoint.stream,
      generation: checkpoint.generation,
      docType: checkpoint.docType,
      tracks: checkpoint.tracks,
      bytes: Buffer.from(checkpoint.header, 'base64'),
    };
    this.#streams.set(checkpoint.stream, {
      name: checkpoint.stream,
      header,
      ring: new SegmentRing({ maxAgeMs: this.#config.bufferMs, maxBytes: this.#config.bufferBytes }),
      nextSeq: checkpoint.nextSeq,
      segments: 0,
      bytesIn: 0,
      openedAt: Date.now(),
    });
  }

  /** A reload's config: streams opened from now on keep what it says (rings of live streams keep their size). */
  configure(config: SourceConfig): void {
    this.#config = { ...config, socketPath: this.#config.socketPath };
    if (this.#tick === undefined) return;
    clearInterval(this.#tick);
    this.#tick = undefined;
    if (config.maxDelayMs > 0) this.#tick = setInterval(this.#onTick, config.maxDelayMs);
    else for (const socket of this.#held) this.#release(socket);
  }

  /**
   * Reads a live input's socket once per --max-delay window, not at each of
   * its publisher's writes: a muxer writing frame by frame woke the source
   * 75 times a second for a 25 fps stream with audio, and every wake-up cost
   * more than the frame's bytes. At each tick the held sockets read what the
   * kernel holds for them, the source ingests it in the same turn, and the
   * outbox goes to the edges at its end; between ticks they do not read. A
   * frame waits at most the window, as it did in the outbox. Returns the
   * release (at the end of the input): the socket reads as usual again.
   * With no budget (--max-delay 0) nothing is held.
   */
  holdReads(socket: Socket): () => void {
    const budget = this.#config.maxDelayMs;
    if (budget === 0) return () => undefined;
    this.#held.add(socket);
    this.#tick ??= setInterval(this.#onTick, budget);
    return () => this.#release(socket);
  }

  #release(socket: Socket): void {
    if (!this.#held.delete(socket)) return;
    startHandleReading(socket);
    if (this.#held.size > 0) return;
    clearInterval(this.#tick);
    this.#tick = undefined;
  }

  readonly #onTick = (): void => {
    for (const socket of this.#held) startHandleReading(socket);
    setImmediate(this.#endTick);
  };

  /** After the poll phase that read and ingested what the held sockets had: they stop reading, and the outbox goes. */
  readonly #endTick = (): void => {
    for (const socket of this.#held) stopHandleReading(socket);
    this.#flush();
  };

  /** A stream's header and next sequence number, for its checkpoint. */
  state(name: string): { header: HeaderMessage; nextSeq: number } | undefined {
    return this.#streams.get(name);
  }

  static async listen(config: SourceConfig, log: Logger): Promise<Hub> {
    // A source killed outright leaves its socket file behind; a new one takes the path over.
    rmSync(config.socketPath, { force: true });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new Hub(server, config, log);
  }

  /**
   * Sets a stream's header. New tracks (codecs, decoder set-up) start a new
   * generation, whose players must start afresh; a header whose tracks decode
   * alike (a publisher back, an upstream reconnected) keeps the generation.
   * False when the bytes are unchanged.
   */
  openStream(name: string, header: LiveHeader): boolean {
    const existing = this.#streams.get(name);
    if (existing && Buffer.compare(Buffer.from(existing.header.bytes), header.bytes) === 0) return false;
    const sameGeneration = existing !== undefined && sameTracks(existing.header.tracks, header.tracks);
    const message: HeaderMessage = {
      type: 'header',
      stream: name,
      generation: (existing?.header.generation ?? 0) + (sameGeneration ? 0 : 1),
      docType: header.docType,
      tracks: header.tracks,
      bytes: header.bytes,
    };
    const stream: HubStream = existing ?? {
      name,
      header: message,
      ring: new SegmentRing({ maxAgeMs: this.#config.bufferMs, maxBytes: this.#config.bufferBytes }),
      nextSeq: 0,
      segments: 0,
      bytesIn: 0,
      openedAt: Date.now(),
    };
    stream.header = message;
    if (!sameGeneration) stream.ring.clear();
    this.#streams.set(name, stream);
    this.#broadcast(encodeFrame(message));
    return true;
  }

  publish(name: string, ts: number, keyframe: boolean, bytes: Uint8Array, arrivedAt = Date.now()): void {
    const stream = this.#streams.get(name);
    if (!stream) return;
    const entry: RingEntry = { seq: stream.nextSeq++, ts, keyframe, bytes };
    stream.ring.push(entry);
    stream.segments++;
    stream.bytesIn += bytes.length;
    this.#broadcast(...encodeSegmentFrame({ type: 'segment', stream: name, sentAt: arrivedAt, seq: entry.seq, ts, keyframe }, bytes));
  }

  /** The input session a stream reads now; null between sessions. */
  setInput(name: string, input: StreamInput | null): void {
    if (input) this.#inputs.set(name, input);
    else this.#inputs.delete(name);
  }

  endStream(name: string, reason: 'eof' | 'error', message?: string): void {
    this.#inputs.delete(name);
    const stream = this.#streams.get(name);
    if (!stream) return;
    this.#streams.delete(name);
    this.#addEnded(stream);
    this.#broadcast(encodeFrame({ type: 'end', stream: name, reason, ...(message ? { message } : {}) }));
  }

  /** Resolves when every edge has taken what was sent to it, or after `timeoutMs`. */
  async flushed(timeoutMs: number): Promise<void> {
    this.#flush();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && [...this.#edges].some((e) => e.channel.writableLength > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Every live stream as the Control API shows it (without its origin, which the Source knows). */
  describe(): Omit<SourceStreamInfo, 'origin'>[] {
    return [...this.#streams.values()].map((s) => ({
      name: s.name,
      docType: s.header.docType,
      tracks: s.header.tracks.map(({ number, type, codec }) => ({ number, type, codec })),
      generation: s.header.generation,
      segments: s.segments,
      bytesIn: s.bytesIn,
      since: new Date(s.openedAt).toISOString(),
    }));
  }

  /** Bytes and Segments taken in per stream, ended streams included (metrics counters never go down). */
  totals(): { bytesIn: Map<string, number>; segments: Map<string, number>; edgesDropped: number } {
    const bytesIn = new Map(this.#ended.bytesIn);
    const segments = new Map(this.#ended.segments);
    for (const s of this.#streams.values()) {
      bytesIn.set(s.name, (bytesIn.get(s.name) ?? 0) + s.bytesIn);
      segments.set(s.name, (segments.get(s.name) ?? 0) + s.segments);
    }
    return { bytesIn, segments, edgesDropped: this.#edgesDropped };
  }

  /** Bounded: past MAX_ENDED_TOTALS names, the oldest is forgotten. */
  #addEnded(stream: HubStream): void {
    for (const [map, n] of [[this.#ended.bytesIn, stream.bytesIn], [this.#ended.segments, stream.segments]] as const) {
      if (!map.has(stream.name) && map.size >= MAX_ENDED_TOTALS) map.delete(map.keys().next().value!);
      map.set(stream.name, (map.get(stream.name) ?? 0) + n);
    }
  }

  stats(): SourceStats {
    return {
      type: 'source-stats',
      streams: [...this.#streams.values()].map((s) => ({
        name: s.name,
        segments: s.segments,
        bytesIn: s.bytesIn,
        edges: this.#edges.size,
        docType: s.header.docType,
        tracks: s.header.tracks,
        input: this.#inputs.get(s.name) ?? null,
      })),
      edgesDropped: this.#edgesDropped,
    };
  }

  async close(): Promise<void> {
    clearInterval(this.#tick);
    this.#tick = undefined;
    this.#flush();
    for (const edge of this.#edges) edge.channel.close();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(socket: Socket): void {
    const link: EdgeLink = { channel: new Channel(socket), edgeId: null };
    this.#edges.add(link);
    link.channel.on('message', (message) => {
      if (message.type === 'hello') this.#onHello(link, message);
    });
    link.channel.on('close', (err) => {
      this.#edges.delete(link);
      // An edge that exits (retired by a reload, killed) resets the link with Segments unread:
      // the master already says why it went.
      const reset = (err as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET';
      if (err) (reset ? this.#log.debug.bind(this.#log) : this.#log.warn.bind(this.#log))(`edge ${link.edgeId ?? '?'}: ${err.message}`);
    });
  }

  #onHello(link: EdgeLink, hello: HelloMessage): void {
    // What is waiting goes to the other edges first: this one gets it from the rings below.
    this.#flush();
    if (hello.version !== PROTOCOL_VERSION) {
      this.#log.error(`edge ${hello.edgeId} speaks protocol ${hello.version}, not ${PROTOCOL_VERSION}`);
      link.channel.close(new ProtocolError('protocol version mismatch'));
      return;
    }
    link.edgeId = hello.edgeId;
    link.channel.send({ type: 'welcome', version: PROTOCOL_VERSION, epoch: this.#epoch, streams: [...this.#streams.keys()] });
    const sameEpoch = hello.epoch === this.#epoch;
    for (const stream of this.#streams.values()) {
      const last = sameEpoch ? hello.resume[stream.name] : undefined;
      const missing = last === undefined ? undefined : stream.ring.after(last);
      if (!missing) link.channel.send(stream.header);
      for (const entry of missing ?? stream.ring.entries()) {
        link.channel.send({ type: 'segment', stream: stream.name, sentAt: Date.now(), ...entry });
      }
    }
  }

  /** One encoding, every edge: queued for the end of the window (see #outbox). */
  #broadcast(...parts: Uint8Array[]): void {
    for (const part of parts) {
      this.#outbox.push(part);
      this.#outboxBytes += part.length;
    }
    if (this.#outboxBytes >= OUTBOX_MAX_BYTES) return this.#flush();
    // While sockets are held, the outbox goes at the end of each tick.
    if (this.#flushScheduled || this.#tick !== undefined) return;
    this.#flushScheduled = true;
    const budget = this.#config.maxDelayMs;
    if (budget > 0) this.#flushTimer = setTimeout(this.#flushNow, budget);
    else setImmediate(this.#flushNow);
  }

  /** An edge that stops reading is dropped, never buffered for without bound. */
  #flush(): void {
    this.#flushScheduled = false;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const parts = this.#outbox;
    if (parts.length === 0) return;
    this.#outbox = [];
    this.#outboxBytes = 0;
    for (const edge of this.#edges) {
      if (edge.edgeId === null) continue;
      if (edge.channel.writableLength > this.#config.edgeBacklogBytes) {
        this.#edgesDropped++;
        this.#log.warn(`edge ${edge.edgeId} fell ${edge.channel.writableLength} bytes behind; dropping its link`);
        edge.channel.close(new MkvcastError('MKV_ERR_EDGE_TOO_SLOW', 'edge too slow'));
        continue;
      }
      edge.channel.sendParts(parts);
    }
  }
}
