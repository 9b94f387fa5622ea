import type { Socket } from 'node:net';
import {
  Hooks,
  HttpError,
  NO_HOOKS,
  NO_JWT,
  describeError,
  hookClient,
  jwtEnabled,
  tokenOf,
  tokenVerifier,
  type EdgeConfig,
  type HookClient,
  type HookEvent,
  type Logger,
  type RequestHead,
} from '@mkvcast/shared';
import type { Player } from './player.js';

/** Checks a player before any stream byte: its token, then the on_play hook. Resolves with its visit, if hooks track it. */
export type Gate = () => Promise<PlayVisit | null>;

/**
 * One admitted player as the hooks know it, from the on_play answer to the
 * end of its connection, when on_stop is told (once, whatever ended it).
 */
export class PlayVisit {
  readonly #admission: PlayerAdmission;
  readonly #client: HookClient;
  readonly #stream: string;
  readonly #since = Date.now();
  #ended = false;
  /** Set once it plays: its bytes and the server's reason for ending it. */
  player: Player | null = null;
  /** Why the server ended it before it played (its stream never started, …). */
  reason: string | null = null;

  constructor(admission: PlayerAdmission, client: HookClient, stream: string) {
    this.#admission = admission;
    this.#client = client;
    this.#stream = stream;
  }

  /** on_stop when the connection closes (at once if it already has). */
  watch(socket: Socket): void {
    if (socket.destroyed) this.#end();
    else socket.once('close', () => this.#end());
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const reason = this.player?.endReason ?? this.reason ?? 'client closed';
    this.#admission.stopped({
      action: 'on_stop',
      stream: this.#stream,
      ...this.#client,
      bytes: this.player?.bytes ?? 0,
      durationMs: Date.now() - this.#since,
      reason,
    });
  }
}

/**
 * Who may play: JWT play tokens and the on_play / on_stop hooks of one
 * edge. Settings are read from the edge's config at each use, so a reload
 * applies to the next player.
 */
export class PlayerAdmission {
  readonly #config: () => EdgeConfig;
  readonly #hooks: Hooks;

  constructor(config: () => EdgeConfig, log: Logger) {
    this.#config = config;
    this.#hooks = new Hooks(log);
  }

  /**
   * The checks a request for `stream` must pass; null when there are none
   * (no tokens, no hooks), so the player goes in without waiting. HEAD asks
   * for no stream bytes: it needs a token, but the hooks do not hear of it.
   */
  gate(socket: Socket, head: RequestHead, stream: string): Gate | null {
    const { jwt = NO_JWT, hooks = NO_HOOKS } = this.#config();
    const needsToken = jwtEnabled(jwt);
    const tracked = head.method === 'GET' && (hooks.onPlay !== null || hooks.onStop !== null);
    if (!needsToken && !tracked) return null;
    return async () => {
      if (needsToken) await tokenVerifier(jwt).verify(tokenOf(head), stream, 'play');
      if (!tracked) return null;
      const client = hookClient(socket.remoteAddress, head);
      const { onPlay, timeoutMs } = this.#config().hooks ?? NO_HOOKS;
      if (onPlay !== null) await this.#hooks.ask(onPlay, { action: 'on_play', stream, ...client }, timeoutMs);
      return new PlayVisit(this, client, stream);
    };
  }


  /** From a visit: tells on_stop, if that hook is (still) configured. */
  stopped(event: HookEvent): void {
    const { onStop, timeoutMs } = this.#config().hooks ?? NO_HOOKS;
    if (onStop !== null) this.#hooks.tell(onStop, event, timeoutMs);
  }
}
