/**
 * Blocks out of the Clusters an edge receives, and a DASH segment's bytes
 * built back from blocks alone. The source forwards a GOP as many small
 * Clusters, cut wherever its input's chunks ended; a segment rebuilt from
 * its blocks (not from those Clusters) is the same on every edge and every
 * host that receives the same blocks with the same timestamps.
 */
import { MKV_ID, encodeId, encodeSize8, encodeUintElement, readId, readSize, readUint } from '@mkvcast/shared';

export interface Block {
  /** Absolute time: the Cluster's Timestamp plus the block's relative timecode (RFC 9559 §10.1), in ticks. */
  time: number;
  track: number;
  /** SimpleBlock with its keyframe flag, or a BlockGroup without ReferenceBlock (RFC 9559 §10.2, §5.1.3.5). */
  keyframe: boolean;
  /** The whole SimpleBlock or BlockGroup element, as received (a view). */
  bytes: Uint8Array;
  /** Where the 2-byte relative timecode is in `bytes`. */
  timecodeAt: number;
}

/** Relative block timecodes are signed 16-bit (RFC 9559 §10.1). */
const MIN_RELATIVE = -32768;
const MAX_RELATIVE = 32767;

/**
 * The blocks of whole, known-size Clusters (what the source sends), in
 * order. Returns null when the bytes are not that: the caller treats it as a
 * break in the stream.
 */
export function blocksOf(bytes: Uint8Array): Block[] | null {
  const out: Block[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const id = readId(bytes, pos);
    if (typeof id === 'number' || id.value !== MKV_ID.Cluster) return null;
    const size = readSize(bytes, pos + id.length);
    if (typeof size === 'number' || size.value < 0) return null;
    const body = pos + id.length + size.length;
    const end = body + size.value;
    if (end > bytes.length || !clusterBlocks(bytes, body, end, out)) return null;
    pos = end;
  }
  return out;
}

/** Appends one Cluster's blocks to `out`; false when its children cannot be read. */
function clusterBlocks(bytes: Uint8Array, from: number, to: number, out: Block[]): boolean {
  let timestamp = -1;
  let pos = from;
  while (pos < to) {
    const id = readId(bytes, pos, to);
    if (typeof id === 'number') return false;
    const size = readSize(bytes, pos + id.length, to);
    if (typeof size === 'number' || size.value < 0) return false;
    const body = pos + id.length + size.length;
    const end = body + size.value;
    if (end > to) return false;
    if (id.value === MKV_ID.Timestamp) timestamp = readUint(bytes, body, size.value);
    else if (id.value === MKV_ID.SimpleBlock || id.value === MKV_ID.BlockGroup) {
      if (timestamp < 0) return false; // the source always writes the Timestamp first
      const block = readBlock(bytes.subarray(pos, end), body - pos, id.value === MKV_ID.SimpleBlock, timestamp);
      if (!block) return false;
      out.push(block);
    }
    // Anything else (Position, PrevSize, Void, CRC-32) has no place in a rebuilt Cluster.
    pos = end;
  }
  return true;
}

function readBlock(element: Uint8Array, body: number, simple: boolean, clusterTimestamp: number): Block | null {
  let blockAt = body;
  let keyframe = true;
  if (!simple) {
    // A BlockGroup: find its Block; a ReferenceBlock makes it a non-key frame.
    let found = -1;
    let pos = body;
    while (pos < element.length) {
      const id = readId(element, pos);
      if (typeof id === 'number') return null;
      const size = readSize(element, pos + id.length);
      if (typeof size === 'number' || size.value < 0) return null;
      const childBody = pos + id.length + size.length;
      if (id.value === MKV_ID.Block) found = childBody;
      if (id.value === MKV_ID.ReferenceBlock) keyframe = false;
      pos = childBody + size.value;
    }
    if (found < 0) return null;
    blockAt = found;
  }
  const track = readSize(element, blockAt); // the track number is a VINT, read like a size (RFC 9559 §10.1)
  if (typeof track === 'number' || track.value < 0) return null;
  const timecodeAt = blockAt + track.length;
  if (timecodeAt + 3 > element.length) return null;
  const relative = ((element[timecodeAt]! << 24) >> 16) | element[timecodeAt + 1]!; // int16, big-endian
  if (simple) keyframe = (element[timecodeAt + 2]! & 0x80) !== 0;
  return { time: clusterTimestamp + relative, track: track.value, keyframe, bytes: element, timecodeAt };
}

const CLUSTER_ID = encodeId(MKV_ID.Cluster);

/**
 * One segment's bytes: a Cluster with Timestamp `start`, then the blocks
 * with timecodes relative to it; where a block's would not fit in 16 bits, a
 * new Cluster with that block's time as Timestamp. A function of `start` and
 * the blocks only.
 */
export function segmentBytes(start: number, blocks: readonly Block[]): Buffer {
  const clusters: { timestamp: number; blocks: Block[]; length: number }[] = [];
  let current = { timestamp: start, blocks: [] as Block[], length: 0 };
  clusters.push(current);
  for (const block of blocks) {
    const relative = block.time - current.timestamp;
    if (relative < MIN_RELATIVE || relative > MAX_RELATIVE) {
      current = { timestamp: block.time, blocks: [], length: 0 };
      clusters.push(current);
    }
    current.blocks.push(block);
    current.length += block.bytes.length;
  }
  const parts: Uint8Array[] = [];
  for (const cluster of clusters) {
    const timestamp = encodeUintElement(MKV_ID.Timestamp, cluster.timestamp);
    parts.push(CLUSTER_ID, encodeSize8(timestamp.length + cluster.length), timestamp);
    for (const block of cluster.blocks) {
      const copy = Buffer.from(block.bytes);
      copy.writeInt16BE(block.time - cluster.timestamp, block.timecodeAt);
      parts.push(copy);
    }
  }
  return Buffer.concat(parts);
}
