import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { Logger } from '@mkvcast/shared';

/** Linux <asm-generic/socket.h>. */
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;

type SetSockOpt = (socket: Socket, level: number, option: number, value: number) => void;

/**
 * Loads setsockopt, which Node does not expose for TCP sockets (sockopt
 * ships prebuilt binaries; elsewhere it may be missing): null without it.
 */
function load(): SetSockOpt | null {
  try {
    const require = createRequire(import.meta.url);
    return (require('sockopt') as typeof import('sockopt')).setsockopt;
  } catch {
    return null;
  }
}

/**
 * Caps a player socket's kernel send buffer. Linux grows it up to
 * tcp_wmem's maximum (4 MB here): a stalled player's lag hides there, out
 * of sight of `writableLength`, for over a minute of a 500 kbit/s stream.
 * With a fixed buffer, a player that stops reading shows as behind within
 * a second or two. (The kernel doubles the value for its own bookkeeping.)
 */
export class SendBufferCap {
  readonly #bytes: number;
  readonly #log: Logger;
  /** Loaded at the first player (undefined until then): see apply(). */
  #set: SetSockOpt | null | undefined;

  constructor(bytes: number, log: Logger) {
    this.#bytes = bytes;
    this.#log = log;
    if (bytes <= 0) this.#set = null;
  }

  /**
   * The addon is loaded at the first player, not at start: a node process that
   * loads a native addon keeps about 3.7 MiB more of the node binary's code
   * resident (measured with msgpackr-extract), in an edge nobody watches.
   */
  apply(socket: Socket): void {
    if (this.#set === undefined) {
      this.#set = load();
      if (!this.#set) this.#log.info('setsockopt is not available here: players keep the system\'s send buffer size, and lag shows later');
    }
    if (!this.#set) return;
    try {
      this.#set(socket, SOL_SOCKET, SO_SNDBUF, this.#bytes);
    } catch {
      // A socket closed meanwhile has no descriptor: nothing to cap.
    }
  }
}
