import type { Socket } from 'node:net';

interface Held<Upload> {
  socket: Socket;
  upload: Upload;
  timer: NodeJS.Timeout;
}

/**
 * Publishers who connect while the source restarts: held, up to `max` of
 * them for up to `waitMs` each, and passed on once it is ready. A publisher
 * the crash cut off usually comes straight back; a 503 then would make it
 * give up (ffmpeg does), and its players would lose it after --grace.
 */
export class HeldPublishers<Upload> {
  readonly #max: number;
  readonly #waitMs: number;
  readonly #refuse: (socket: Socket) => void;
  readonly #held = new Set<Held<Upload>>();

  /** `refuse` answers a publisher that cannot be held, or waited too long. */
  constructor(max: number, waitMs: number, refuse: (socket: Socket) => void) {
    this.#max = max;
    this.#waitMs = waitMs;
    this.#refuse = refuse;
  }

  /** `upload`: what goes to the source with the socket (its request head, the body bytes read). */
  hold(socket: Socket, upload: Upload): void {
    if (this.#held.size >= this.#max) {
      this.#refuse(socket);
      return;
    }
    const held: Held<Upload> = {
      socket,
      upload,
      timer: setTimeout(() => {
        this.#held.delete(held);
        this.#refuse(socket);
      }, this.#waitMs),
    };
    this.#held.add(held);
  }

  /** The source is ready: every held publisher goes to it. */
  release(pass: (socket: Socket, upload: Upload) => void): void {
    for (const held of this.#held) {
      clearTimeout(held.timer);
      pass(held.socket, held.upload);
    }
    this.#held.clear();
  }

  close(): void {
    for (const held of this.#held) {
      clearTimeout(held.timer);
      held.socket.destroy();
    }
    this.#held.clear();
  }
}
