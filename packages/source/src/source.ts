import type { Socket } from 'node:net';
import { describeError, type InputConfig, type Logger, type SourceConfig, type SourceToMaster, type StreamCheckpoint } from '@mkvcast/shared';
import type { Hub } from './hub.js';
import { StreamIngest } from './ingest.js';
import { PooledHeaderBuilder, type HeaderBuilder } from './headerBuilder.js';
import { openInput } from './inputs/open.js';
import type { SessionSource } from './inputs/session.js';
import { PublishRouter } from './publish.js';

interface Running {
  ingest: StreamIngest;
  source: SessionSource;
}

/** How long the hub may take to hand an ended stream's last bytes to the edges, ms. */
const FLUSH_TIMEOUT_MS = 10_000;

/**
 * Every stream of the source process: the configured inputs, and the streams
 * publishers create on the fly. Runs each as an ingest and reports its end.
 */
export class Source {
  readonly #config: SourceConfig;
  readonly #hub: Hub;
  readonly #log: Logger;
  readonly #send: (message: SourceToMaster) => void;
  readonly #running = new Map<string, Running>();
  readonly #publish: PublishRouter;
  /** Live headers for every stream, decoded on worker threads: one big header must not stall the others. */
  readonly #headers: HeaderBuilder = new PooledHeaderBuilder();
  /** Streams the last run of the source left live, by name, until their ingest starts. */
  readonly #resume: Map<string, StreamCheckpoint>;

  constructor(config: SourceConfig, hub: Hub, log: Logger, send: (m: SourceToMaster) => void) {
    this.#config = config;
    this.#hub = hub;
    this.#log = log;
    this.#send = send;
    this.#resume = new Map(config.restore.map((c) => [c.stream, c]));
    this.#publish = new PublishRouter(
      { key: config.publishKey, graceMs: config.graceMs, idleTimeoutMs: config.idleTimeoutMs, maxStreams: config.maxPublished },
      config.inputs.map((i) => i.name),
      (name, source) => this.#run(name, this.#ingest(name, false, true), source, false),
      log,
      () => this.#config,
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
    });
  }

  /** Starts every configured input. */
  async start(): Promise<void> {
    for (const input of this.#config.inputs) await this.#startInput(input);
  }

  /** A publisher's connection, passed on by an edge and the master. */
  publish(socket: Socket, received: Buffer): void {
    this.#publish.accept(socket, received);
  }

  async close(): Promise<void> {
    this.#publish.close();
    for (const { ingest } of this.#running.values()) ingest.stop();
    await this.#headers.close();
  }

  async #startInput(input: InputConfig): Promise<void> {
    let source: SessionSource & { live: boolean };
    try {
      source = await openInput(input, this.#log, { idleTimeoutMs: this.#config.idleTimeoutMs });
    } catch (err) {
      const message = describeError(err);
      this.#log.error(`stream '${input.name}': ${message}`);
      this.#send({ type: 'ended', stream: input.name, ok: false, message });
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
      if (ingest.stopped) return;
      this.#hub.endStream(name, ok ? 'eof' : 'error', message);
      if (ok) this.#log.info(`stream '${name}': ended`);
      await this.#hub.flushed(FLUSH_TIMEOUT_MS);
      this.#send({ type: 'ended', stream: name, ok, ...(message ? { message } : {}) });
    })();
  }
}
