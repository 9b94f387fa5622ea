import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { InputConfig } from '@mkvcast/shared';

/** Opens an input's bytes: a file from its start, or standard input as it comes. */
export function openInput(input: InputConfig): Readable {
  if (input.path === '-') return process.stdin;
  return createReadStream(input.path, { highWaterMark: 64 * 1024 });
}
