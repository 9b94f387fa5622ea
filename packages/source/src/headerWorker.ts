/**
 * piscina worker entry: decodes a stream's Info and Tracks with node-ebml,
 * statelessly. Our errors come back as their code and message: a thread
 * boundary keeps neither an error's class nor its `code`.
 */
import { MkvcastError } from '@mkvcast/shared';
import type { HeaderFacts } from './header.js';
import { decodeHeader } from './headerDecode.js';

export interface DecodeJob {
  info: Uint8Array;
  tracks: Uint8Array;
}

export type DecodeResult = { facts: HeaderFacts } | { error: { code: string; message: string } };

export default function decodeHeaderTask(job: DecodeJob): DecodeResult {
  try {
    return { facts: decodeHeader(job.info, job.tracks) };
  } catch (err) {
    if (err instanceof MkvcastError) return { error: { code: err.code, message: err.message } };
    throw err;
  }
}
