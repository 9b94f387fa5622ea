/**
 * Live stream headers, built off the source's event loop. node-ebml decodes
 * Info and Tracks at ~16–20 MB/s and Tracks may carry megabytes of
 * CodecPrivate: in the source's thread, one such header would stall every
 * other stream the source serves. So the decoding runs on a piscina pool;
 * the cheap rest (checks, copying the elements into the header) stays here,
 * and Attachments, Tags and Chapters never cross to the worker.
 *
 * Idle memory matters more than the ~0.3 s a thread takes to start, once per
 * header after a quiet spell: the pool keeps no thread while idle
 * (minThreads 0, idleTimeout), and until the first header the source loads
 * neither piscina nor node-ebml (together about 11 MB).
 */
import { once } from 'node:events';
import type { Piscina } from 'piscina';
import { CorruptStreamError, MkvcastError, isErrorCode } from '@mkvcast/shared';
import { assembleLiveHeader, headerElements, type LiveHeader } from './header.js';
import type { DecodeJob, DecodeResult } from './headerWorker.js';

export interface HeaderBuilder {
  /** The live header from the EBML header and the level-1 elements before the first Cluster. */
  build(ebmlHeader: Buffer, docType: string, elements: ReadonlyMap<number, Buffer>): Promise<LiveHeader>;
  close(): Promise<void>;
}

export interface HeaderPoolOptions {
  /** Headers decoded at once, at most. Default 2. */
  maxThreads?: number;
  /** How long a thread stays without work before it ends, ms. Default 5000. */
  idleTimeoutMs?: number;
}

type Pool = Piscina<DecodeJob, DecodeResult>;

/** On piscina's threads: none while idle. */
export class PooledHeaderBuilder implements HeaderBuilder {
  readonly #options: HeaderPoolOptions;
  /** Created for the first header. */
  #opening: Promise<Pool> | undefined;
  #pool: Pool | undefined;

  constructor(options: HeaderPoolOptions = {}) {
    this.#options = options;
  }

  /** Worker threads alive now. */
  get threads(): number {
    return this.#pool?.threads.length ?? 0;
  }

  /** Resolves once no worker thread is left (after the idle timeout). */
  async whenIdle(): Promise<void> {
    const pool = this.#pool;
    while (pool && pool.threads.length > 0) await once(pool, 'workerDestroy');
  }

  async build(ebmlHeader: Buffer, docType: string, elements: ReadonlyMap<number, Buffer>): Promise<LiveHeader> {
    const { info, tracks } = headerElements(elements);
    const pool = await this.#open();
    // Copied to the worker, never transferred: the header is assembled here
    // from these same bytes. A clone copies a view's whole ArrayBuffer, so
    // each goes as exactly its own bytes (the scanner's elements already are).
    const result = await pool.run({ info: ownBytes(info), tracks: ownBytes(tracks) });
    if ('error' in result) throw typedError(result.error);
    return assembleLiveHeader(ebmlHeader, docType, elements, result.facts);
  }

  async close(): Promise<void> {
    const pool = await this.#opening;
    await pool?.close({ force: true });
  }

  #open(): Promise<Pool> {
    this.#opening ??= import('piscina').then(({ Piscina }) => {
      this.#pool = new Piscina<DecodeJob, DecodeResult>({
        filename: new URL('./headerWorker.js', import.meta.url).href,
        minThreads: 0,
        maxThreads: this.#options.maxThreads ?? 2,
        idleTimeout: this.#options.idleTimeoutMs ?? 5000,
      });
      return this.#pool;
    });
    return this.#opening;
  }
}

function ownBytes(bytes: Buffer): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}

/** Our error again, from what crossed the thread boundary; callers match on the code. */
function typedError({ code, message }: { code: string; message: string }): MkvcastError {
  if (code === 'MKV_ERR_CORRUPT_STREAM') return new CorruptStreamError(message);
  return new MkvcastError(isErrorCode(code) ? code : 'MKV_ERR_INTERNAL', message);
}
