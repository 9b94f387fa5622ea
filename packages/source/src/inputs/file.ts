import { createReadStream } from 'node:fs';
import type { Session, SessionSource } from './session.js';

/** A file read from its start, once or (looping) forever; or standard input, once. */
export class FileSource implements SessionSource {
  readonly #path: string;
  readonly #loop: boolean;
  #passes = 0;
  #closed = false;

  constructor(path: string, loop: boolean) {
    this.#path = path;
    this.#loop = loop && path !== '-';
  }

  async next(): Promise<Session | null> {
    if (this.#closed || (this.#passes > 0 && !this.#loop)) return null;
    this.#passes++;
    if (this.#path === '-') return { stream: process.stdin, label: 'stdin', kind: 'stdin' };
    return { stream: createReadStream(this.#path, { highWaterMark: 64 * 1024 }), label: `${this.#path} (pass ${this.#passes})`, kind: 'file', path: this.#path };
  }

  close(): void {
    this.#closed = true;
  }
}
