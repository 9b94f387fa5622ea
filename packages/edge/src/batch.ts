import type { LiveEntry } from './player.js';

/**
 * Live Segments that arrived within one --max-delay window, written to each
 * player as one buffer. The bytes are joined once and shared by every player;
 * a player waiting for a keyframe starts at the batch's first one.
 */
export interface Batch {
  bytes: Uint8Array;
  /** Byte offset of the first keyframe Segment in `bytes`; -1 when there is none. */
  keyAt: number;
  /** When the source had the oldest Segment (latency is measured from it). */
  sentAt?: number;
}

export function batchOf(entries: readonly LiveEntry[]): Batch {
  if (entries.length === 1) {
    const [entry] = entries as [LiveEntry];
    return { bytes: entry.bytes, keyAt: entry.keyframe ? 0 : -1, sentAt: entry.sentAt };
  }
  let keyAt = -1;
  let at = 0;
  for (const entry of entries) {
    if (keyAt < 0 && entry.keyframe) keyAt = at;
    at += entry.bytes.length;
  }
  return { bytes: Buffer.concat(entries.map((e) => e.bytes), at), keyAt, sentAt: entries[0]!.sentAt };
}
