import { open, type FileHandle } from 'node:fs/promises';

/** Bytes per read: about a second of a 500 kbit/s stream. */
export const FILE_CHUNK_BYTES = 64 * 1024;

/**
 * A file's bytes, read into two buffers taken in turn: while the reader has
 * one chunk, the next is read into the other. A chunk is valid only until
 * the next one is asked for; the ingest copies each into its scanner first.
 *
 * Why not a ReadStream: it allocates a new 64 KiB ArrayBuffer for every
 * read. V8 counts ArrayBuffer bytes allocated since its last major
 * collection against the old generation's limit, so with 50 looped files
 * (3 MB/s of reads) the source ran a major collection every second.
 */
export class FileChunks implements AsyncIterable<Buffer> {
  readonly #path: string;
  readonly #chunkBytes: number;
  #iterator: AsyncGenerator<Buffer> | undefined;
  #destroyed = false;

  constructor(path: string, chunkBytes = FILE_CHUNK_BYTES) {
    this.#path = path;
    this.#chunkBytes = chunkBytes;
  }

  [Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    if (this.#iterator) throw new Error('FileChunks: iterated twice');
    this.#iterator = this.#read();
    return this.#iterator;
  }

  /** Stops reading and closes the file, now or once the read in flight is back. */
  destroy(): void {
    this.#destroyed = true;
    void this.#iterator?.return(undefined).catch(() => undefined);
  }

  async *#read(): AsyncGenerator<Buffer> {
    if (this.#destroyed) return;
    const handle = await open(this.#path, 'r');
    const buffers = [Buffer.allocUnsafeSlow(this.#chunkBytes), Buffer.allocUnsafeSlow(this.#chunkBytes)];
    let turn = 0;
    let reading: Promise<number> | undefined = readInto(handle, buffers[turn]!);
    try {
      while (!this.#destroyed) {
        const n = await reading;
        reading = undefined;
        if (n === 0 || this.#destroyed) return;
        const chunk = buffers[turn]!.subarray(0, n);
        turn ^= 1;
        // The buffer read into now is the one the reader handed back by asking for this chunk.
        reading = readInto(handle, buffers[turn]!);
        yield chunk;
      }
    } finally {
      await reading?.catch(() => undefined);
      await handle.close();
    }
  }
}

async function readInto(handle: FileHandle, buffer: Buffer): Promise<number> {
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
  return bytesRead;
}
