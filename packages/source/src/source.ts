import type { Socket } from 'node:net';
import { StreamCutError, describeError, type HandedHead, type InputConfig, type SourceStreamInfo, type Logger, type SourceConfig, type SourceToMaster, type StreamCheckpoint } from '@mkvcast/shared';
import type { Hub } from './hub.js';
import { StreamIngest } from './ingest.js';
import { PooledHeaderBuilder, type HeaderBuilder } from './headerBuilder.js';
import { openInput } from './inputs/open.js';
import type { SessionSource } from './inputs/session.js';
import { PublishRouter, type PublishOptions } from './publish.js';

interface Running {
  ingest: StreamIngest;
  source: SessionSource;
}

function publishOptions(config: SourceConfig): PublishOptions {
  return {
    key: config.publishKey,
    keys: config.publishKeys ?? {},
    graceMs: config.graceMs,
    idleTimeoutMs: config.idleTimeoutMs,
    maxStreams: config.maxPublished,
  };
}

/** How long the hub may take to hand an ended stream's last bytes to the edges, ms. */
const FLUSH_TIMEOUT_MS = 10_000;

/**
 * Every stream of the source process: the configured inputs, and the streams
 * publishers create on the fly. Runs each as an ingest and reports its end.
 */
export class Source {
  #config: SourceConfig;
  /** start() was called: inputs added from now on start at once. */
  #started = false;
  readonly #hub: Hub;
  readonly #log: Logger;
  readonly #send: (message: SourceToMaster) => void;
  readonly #running = new Map<string, Running>();
  readonly #publish: PublishRouter;
  /** Live headers for every stream, decoded on worker threads: one big header must not stall the others. */
  readonly #headers: HeaderBuilder = new PooledHeaderBuilder();
  /** Streams the last run of the source left live, by name, until their ingest starts. */
  readonly #resume: Map<string, StreamCheckpoint>;
  /** Ingests stopped by an operator's cut: they end their stream as if their input had ended. */
  readonly #cut = new WeakSet<StreamIngest>();

  constructor(config: SourceConfig, hub: Hub, log: Logger, send: (m: SourceToMaster) => void) {
    this.#config = config;
    this.#hub = hub;
    this.#log = log;
    this.#send = send;
    this.#resume = new Map(config.restore.map((c) => [c.stream, c]));
    this.#publish = new PublishRouter(
      publishOptions(config),
      config.inputs.map((i) => i.name),
      (name, source) => this.#run(name, this.#ingest(name, false, true), source, false),
      log,
      () => this.#config,
      (socket) => this.#hub.holdReads(socket),
    );
    // Publishers cut off by the last run's end get --grace to come back; their players stay.
    for (const checkpoint of config.restore) {
      if (checkpoint.published) this.#publish.restore(checkpoint.stream);
    }
  }

  #ingest(name: string, paced: boolean, published: boolean): StreamIngest {
    const resume = this.#resume.get(name);
    this.#resume.delete(name);
    return new StreamIngest(name, {
      paced,
      published,
      hub: this.#hub,
      log: this.#log,
      ffmpeg: this.#config.ffmpeg,
      headers: this.#headers,
      resume,
      checkpoint: this.#send,
      input: (input) => this.#hub.setInput(name, input),
    });
  }

  /** Starts every configured input. */
  async start(): Promise<void> {
    this.#started = true;
    for (const input of this.#config.inputs) await this.#startInput(input);
  }

  /** A reload's config: keys and limits for publishers from now on; the inputs come as add/end messages. */
  configure(config: SourceConfig): void {
    this.#config = config;
    this.#publish.configure(publishOptions(config), config.inputs.map((i) => i.name));
  }

  /**
   * Starts an input a reload added. A stream of that name still running (its
   * input changed) stops reading without ending: the new input goes on with
   * it from `resume`, and its players stay.
   */
  addInput(input: InputConfig, resume?: StreamCheckpoint): void {
    const running = this.#running.get(input.name);
    if (running) {
      running.ingest.stop();
      this.#running.delete(input.name);
    }
    if (resume) this.#resume.set(input.name, resume);
    if (this.#started) void this.#startInput(input);
  }

  /** Ends an input a reload removed: its players get what the edges hold, then the end of the stream. */
  endInput(name: string): void {
    const running = this.#running.get(name);
    this.#resume.delete(name);
    if (!running) return;
    running.ingest.stop();
    this.#running.delete(name);
    this.#hub.endStream(name, 'eof');
    this.#log.info(`stream '${name}': removed from the config`);
    this.#send({ type: 'ended', stream: name, ok: true });
  }

  /** A publisher's connection, passed on by an edge and the master with its head and the body bytes read. */
  publish(socket: Socket, head: HandedHead, body: Buffer): void {
    this.#publish.accept(socket, head, body);
  }

  /** Every live stream, with where it comes from. */
  streams(): SourceStreamInfo[] {
    const inputs = new Set(this.#config.inputs.map((i) => i.name));
    return this.#hub.describe().map((s) => ({ ...s, origin: inputs.has(s.name) ? 'input' : 'publisher' }));
  }

  /** Publishers refused, by reason. */
  get rejected(): ReadonlyMap<string, number> {
    return this.#publish.rejected;
  }

  /**
   * Ends a stream on an operator's command: its input stops (a publisher's
   * upload is cut off and answered 410), its players get what they have and
   * are closed. False when no such stream runs.
   */
  cut(name: string): boolean {
    const running = this.#running.get(name);
    if (!running) return false;
    this.#cut.add(running.ingest);
    running.ingest.stop(new StreamCutError(name));
    return true;
  }

  async close(): Promise<void> {
    this.#publish.close();
    for (const { ingest } of this.#running.values()) ingest.stop();
    await this.#headers.close();
  }

  async #startInput(input: InputConfig): Promise<void> {
    let source: SessionSource & { live: boolean };
    try {
      source = await openInput(input, this.#log, { idleTimeoutMs: this.#config.idleTimeoutMs, ffmpeg: this.#config.ffmpeg });
    } catch (err) {
      const message = describeError(err);
      this.#log.error(`stream '${input.name}': ${message}`);
      this.#send({ type: 'ended', stream: input.name, ok: false, message });
      return;
    }
    // Removed or replaced by a reload while it opened.
    if (!this.#config.inputs.some((i) => i === input || (i.name === input.name && i.path === input.path)) || this.#running.has(input.name)) {
      source.close();
      return;
    }
    const ingest = this.#ingest(input.name, input.paced, false);
    // A file or stdin that breaks ends its stream; a live input waits for its next session.
    const live = source.live;
    this.#run(input.name, ingest, source, !live);
  }

  #run(name: string, ingest: StreamIngest, source: SessionSource, sessionErrorsEnd: boolean): void {
    this.#running.set(name, { ingest, source });
    void (async () => {
      let ok = true;
      let message: string | undefined;
      try {
        await ingest.run(source, sessionErrorsEnd);
      } catch (err) {
        ok = false;
        message = describeError(err);
      }
      if (this.#running.get(name)?.ingest === ingest) this.#running.delete(name);
      const cut = this.#cut.has(ingest);
      if (ingest.stopped && !cut) return;
      if (cut) {
        // What the cut did to the input is no error of the stream's.
        ok = true;
        message = undefined;
        this.#log.info(`stream '${name}': cut on command`);
      }
      this.#hub.endStream(name, ok ? 'eof' : 'error', message);
      if (ok && !cut) this.#log.info(`stream '${name}': ended`);
      await this.#hub.flushed(FLUSH_TIMEOUT_MS);
      this.#send({ type: 'ended', stream: name, ok, ...(message ? { message } : {}) });
    })();
  }
}
