import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FILE_CHUNK_BYTES, FileChunks } from '../src/inputs/fileChunks.js';

/** A file of `bytes` random bytes, removed after the test. */
function tempFile(t: { after(fn: () => void): void }, bytes: number): { file: string; data: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'mkvcast-chunks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'input.bin');
  const data = randomBytes(bytes);
  writeFileSync(file, data);
  return { file, data };
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

test('a file is read whole, in order, into the same two buffers taken in turn', async (t) => {
  // Past what a socket or pipe buffer would hide, and not a whole number of chunks.
  const { file, data } = tempFile(t, 6 * 1024 * 1024 + 12345);
  const copies: Buffer[] = [];
  const arrayBuffers = new Set<ArrayBufferLike>();
  let reads = 0;
  for await (const chunk of new FileChunks(file)) {
    reads++;
    arrayBuffers.add(chunk.buffer);
    assert.ok(chunk.length <= FILE_CHUNK_BYTES);
    copies.push(Buffer.from(chunk));
  }
  assert.ok(Buffer.concat(copies).equals(data), 'the bytes read are the file');
  assert.equal(reads, Math.ceil(data.length / FILE_CHUNK_BYTES));
  // One buffer per read was a new ArrayBuffer for every 64 KiB (what this reader is for).
  assert.equal(arrayBuffers.size, 2, 'every read reuses one of two buffers');
});

test('a chunk is not overwritten while its reader holds it, though the next one is read meanwhile', async (t) => {
  const { file, data } = tempFile(t, 4 * FILE_CHUNK_BYTES);
  const iterator = new FileChunks(file)[Symbol.asyncIterator]();
  const first = (await iterator.next()).value as Buffer;
  // Let the read ahead land.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(first.equals(data.subarray(0, FILE_CHUNK_BYTES)));
  const second = (await iterator.next()).value as Buffer;
  assert.ok(second.equals(data.subarray(FILE_CHUNK_BYTES, 2 * FILE_CHUNK_BYTES)));
  await iterator.return(undefined);
});

test('destroy() between chunks closes the file', async (t) => {
  const { file } = tempFile(t, 4 * FILE_CHUNK_BYTES);
  const before = openFds();
  const chunks = new FileChunks(file);
  const iterator = chunks[Symbol.asyncIterator]();
  await iterator.next();
  assert.equal(openFds(), before + 1, 'the file is open while read');
  // The reader asks for nothing more (as an ingest that stops does): destroy() alone must close it.
  chunks.destroy();
  for (let i = 0; i < 500 && openFds() !== before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(openFds(), before, 'the file is closed');
  assert.equal((await iterator.next()).done, true, 'and nothing more comes');
});

test('a missing file rejects with ENOENT', async () => {
  await assert.rejects(async () => {
    for await (const chunk of new FileChunks('/nonexistent/mkvcast/input.webm')) void chunk;
  }, { code: 'ENOENT' });
});
