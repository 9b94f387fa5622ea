/**
 * Cluster Timestamps moved so that one player's stream starts at 0.
 *
 * Why: Chromium's `<video src>` takes 0 as the start of a Matroska stream
 * that has no Duration (a live one) when its first track is H.264 or HEVC
 * (its demuxer trusts only the first DTS of other codecs, and FFmpeg leaves
 * an H.264 track's start time unset there). A player that joins a stream 10
 * minutes in then shows its first frame and waits 10 minutes of clock
 * before the next one. WebM (VP8/VP9) is unaffected, and so are ffmpeg,
 * mpv and VLC; the edge rebases only for browser media elements (see
 * Edge.#join), on a private copy of what it writes to them: every other
 * player still gets the shared bytes.
 */
import { MKV_ID, readId, readSize, readUint } from '@mkvcast/shared';

/** The Timestamp (RFC 9559 §5.1.3.1) of the first Cluster in `bytes`, or null when it does not open with one. */
export function firstClusterTimestamp(bytes: Uint8Array): number | null {
  const at = timestampAt(bytes, 0);
  return at === null ? null : readUint(bytes, at.pos, at.length);
}

/**
 * A copy of `bytes` (whole Clusters) with `base` taken off every Cluster's
 * Timestamp (never below 0). Block timestamps are relative to their
 * Cluster's (RFC 9559 §10.1), so they move with it. Bytes it cannot read
 * as Clusters are copied unchanged.
 */
export function rebased(bytes: Uint8Array, base: number): Buffer {
  const copy = Buffer.from(bytes);
  let pos = 0;
  while (pos < copy.length) {
    const id = readId(copy, pos);
    if (typeof id === 'number' || id.value !== MKV_ID.Cluster) break;
    const size = readSize(copy, pos + id.length);
    if (typeof size === 'number' || size.value < 0) break;
    const at = timestampAt(copy, pos);
    if (at !== null) {
      const value = Math.max(0, readUint(copy, at.pos, at.length) - base);
      writeUint(copy, at.pos, at.length, value);
    }
    pos += id.length + size.length + size.value;
  }
  return copy;
}

/** Where the value of the Timestamp that opens the Cluster at `pos` is. */
function timestampAt(bytes: Uint8Array, pos: number): { pos: number; length: number } | null {
  const id = readId(bytes, pos);
  if (typeof id === 'number' || id.value !== MKV_ID.Cluster) return null;
  const size = readSize(bytes, pos + id.length);
  if (typeof size === 'number') return null;
  const child = pos + id.length + size.length;
  const childId = readId(bytes, child);
  if (typeof childId === 'number' || childId.value !== MKV_ID.Timestamp) return null;
  const childSize = readSize(bytes, child + childId.length);
  if (typeof childSize === 'number' || childSize.value < 1 || childSize.value > 8) return null;
  const valuePos = child + childId.length + childSize.length;
  if (valuePos + childSize.value > bytes.length) return null;
  return { pos: valuePos, length: childSize.value };
}

/** A big-endian unsigned integer in exactly `length` bytes (a smaller value always fits where the old one was). */
function writeUint(bytes: Uint8Array, pos: number, length: number, value: number): void {
  let v = value;
  for (let i = length - 1; i >= 0; i--) {
    bytes[pos + i] = v % 256;
    v = Math.floor(v / 256);
  }
}
