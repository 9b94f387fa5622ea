import { FileChunks } from './fileChunks.js';
import type { Session, SessionBytes, SessionSource } from './session.js';

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

  async next(): Promise<Session<SessionBytes> | null> {
    if (this.#closed || (this.#passes > 0 && !this.#loop)) return null;
    this.#passes++;
    if (this.#path === '-') return { stream: process.stdin, label: 'stdin', kind: 'stdin' };
    return { stream: new FileChunks(this.#path), label: `${this.#path} (pass ${this.#passes})`, kind: 'file', path: this.#path };
  }

  close(): void {
    this.#closed = true;
  }
}
