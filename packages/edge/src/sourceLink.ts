import { connect } from 'node:net';
import { EventEmitter } from 'node:events';
import {
  Channel,
  PROTOCOL_VERSION,
  type EdgeMessage,
  type Logger,
  type SourceMessage,
} from '@mkvcast/shared';

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

export interface SourceLinkEvents {
  message: [SourceMessage];
  /** The source's writes so far are read whole (see Channel's caughtUp), or the link is lost. */
  caughtUp: [];
  connected: [];
}

/**
 * The edge's connection to the source. Says hello with the epoch and last
 * sequence numbers it holds so the source can resume without gaps, and
 * reconnects with backoff whenever the link drops.
 */
export class SourceLink extends EventEmitter<SourceLinkEvents> {
  readonly #socketPath: string;
  readonly #edgeId: number;
  readonly #log: Logger;
  readonly #resume: () => Record<string, number>;
  #channel: Channel<SourceMessage, EdgeMessage> | undefined;
  #epoch: string | null = null;
  #retryMs = RETRY_MIN_MS;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(socketPath: string, edgeId: number, log: Logger, resume: () => Record<string, number>) {
    super();
    this.#socketPath = socketPath;
    this.#edgeId = edgeId;
    this.#log = log;
    this.#resume = resume;
  }

  /** The source run this edge last heard from. */
  get epoch(): string | null {
    return this.#epoch;
  }

  connect(): void {
    if (this.#closed) return;
    const socket = connect(this.#socketPath);
    const channel = new Channel<SourceMessage, EdgeMessage>(socket);
    this.#channel = channel;
    socket.once('connect', () => {
      channel.send({
        type: 'hello',
        version: PROTOCOL_VERSION,
        edgeId: this.#edgeId,
        epoch: this.#epoch,
        resume: this.#resume(),
      });
    });
    channel.on('message', (message) => {
      if (message.type === 'welcome') {
        this.#retryMs = RETRY_MIN_MS;
        this.#epoch = message.epoch;
        this.emit('connected');
      }
      this.emit('message', message);
    });
    channel.on('caughtUp', () => this.emit('caughtUp'));
    channel.on('close', (err) => {
      // What was read is all this link will bring.
      this.emit('caughtUp');
      if (this.#channel !== channel || this.#closed) return;
      this.#log.debug(`link to source lost${err ? `: ${err.message}` : ''}; retrying in ${this.#retryMs} ms`);
      this.#timer = setTimeout(() => this.connect(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
    });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#channel?.close();
  }
}
