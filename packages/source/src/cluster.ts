/**
 * Stateless work on one whole Cluster (RFC 9559 §5.1.3): index its children,
 * split it before video keyframes so that every piece a player may start on
 * opens with one, and rebuild each piece with a known size and a fresh
 * Timestamp. Pure and synchronous, so it runs in a piscina worker as well as
 * in-process; it never mutates its input.
 */
import {
  CorruptStreamError,
  EBML_ID,
  LEVEL1_IDS,
  MKV_ID,
  NEED_MORE,
  UNKNOWN_SIZE,
  encodeId,
  encodeSize8,
  encodeUintElement,
  readId,
  readSize,
  readUint,
} from '@mkvcast/shared';

export interface ClusterJob {
  /** One whole Cluster element; an unknown size means it ends at the end of `bytes`. */
  bytes: Uint8Array;
  /** TrackNumber of the video track; 0 when the stream has no video. */
  videoTrack: number;
  /** Ticks (TimestampScale units) added to every Cluster Timestamp written, for looping. */
  timestampOffset: number;
  /** Start a new piece at the first block at or past its piece start + this many ticks; 0 = only at keyframes. */
  splitInterval: number;
}

export interface ClusterPiece {
  /** A Cluster of known size whose first child is Timestamp, then the kept children. */
  bytes: Uint8Array;
  /** The Cluster Timestamp written into the piece (ticks, offset included). */
  timestamp: number;
  /** A player may start here: the first video block is a keyframe (audio-only: always). */
  keyframe: boolean;
  /** Largest absolute block timestamp in the piece (offset included); `timestamp` when empty. */
  lastTimestamp: number;
}

const INT16_MIN = -0x8000;
const INT16_MAX = 0x7fff;
const CLUSTER_ID = encodeId(MKV_ID.Cluster);
/** Cluster ID + 8-byte size VINT: the fixed head of every piece we write. */
const PIECE_HEAD_LENGTH = CLUSTER_ID.length + 8;

/**
 * The kept children of one Cluster as parallel arrays (no object per child),
 * and the blocks among them. Block timestamps are int16 values relative to
 * the Cluster Timestamp (RFC 9559 §10.1).
 */
interface ClusterIndex {
  /** Cluster Timestamp as read, without offset. */
  timestamp: number;
  childStart: number[];
  childEnd: number[];
  /** Index into the block arrays, or -1 for a child that is not a block. */
  childBlock: number[];
  blockChild: number[];
  blockTrack: number[];
  blockRel: number[];
  blockKey: boolean[];
  /** Where the int16 timestamp sits, counted from the first byte of the child element. */
  blockTsOffset: number[];
}

interface ElementHeader {
  id: number;
  dataStart: number;
  dataEnd: number;
}

export function processCluster(job: ClusterJob): ClusterPiece[] {
  checkJob(job);
  const index = indexCluster(job.bytes);
  const splits = acceptSplits(index, splitCandidates(index, job), job.timestampOffset);
  const pieces: ClusterPiece[] = [];
  let from = 0;
  let base = 0;
  for (const block of splits) {
    const to = index.blockChild[block]!;
    pieces.push(buildPiece(job, index, from, to, base));
    from = to;
    base = index.blockRel[block]!;
  }
  pieces.push(buildPiece(job, index, from, index.childStart.length, base));
  return pieces;
}

/** Job fields come from our own code; a bad one is a bug, not a corrupt stream. */
function checkJob(job: ClusterJob): void {
  if (!Number.isSafeInteger(job.videoTrack) || job.videoTrack < 0) {
    throw new RangeError(`videoTrack must be a non-negative integer, got ${job.videoTrack}`);
  }
  if (!Number.isSafeInteger(job.timestampOffset) || job.timestampOffset < 0) {
    throw new RangeError(`timestampOffset must be a non-negative integer, got ${job.timestampOffset}`);
  }
  if (!(job.splitInterval >= 0)) {
    throw new RangeError(`splitInterval must be >= 0, got ${job.splitInterval}`);
  }
}

function corrupt(pos: number, message: string): CorruptStreamError {
  return new CorruptStreamError(`Cluster byte ${pos}: ${message}`);
}

// ---------------------------------------------------------------- indexing

/** One pass over the Cluster's children; throws CorruptStreamError on anything it cannot trust. */
function indexCluster(bytes: Uint8Array): ClusterIndex {
  const { bodyStart, end } = readClusterHeader(bytes);
  const index: ClusterIndex = {
    timestamp: -1,
    childStart: [],
    childEnd: [],
    childBlock: [],
    blockChild: [],
    blockTrack: [],
    blockRel: [],
    blockKey: [],
    blockTsOffset: [],
  };
  let pos = bodyStart;
  while (pos < end) {
    const child = readChildHeader(bytes, pos, end, 'Cluster child');
    let block = -1;
    switch (child.id) {
      case MKV_ID.Timestamp:
        index.timestamp = readTimestamp(bytes, pos, child, index.timestamp);
        pos = child.dataEnd;
        continue;
      // Their values describe the original layout and are wrong once we
      // rewrite sizes and split (Position, PrevSize: RFC 9559 §5.1.3;
      // CRC-32, Void: RFC 8794 §11.3).
      case MKV_ID.Position:
      case MKV_ID.PrevSize:
      case EBML_ID.CRC32:
      case EBML_ID.Void:
        pos = child.dataEnd;
        continue;
      case MKV_ID.SimpleBlock:
        block = addBlock(index, bytes, pos, child.dataStart, child.dataEnd, null);
        break;
      case MKV_ID.BlockGroup:
        block = addBlockGroup(index, bytes, pos, child);
        break;
      default:
        // A level-1 ID here means the caller framed the Cluster wrongly.
        if (LEVEL1_IDS.has(child.id)) {
          throw corrupt(pos, `level-1 element 0x${child.id.toString(16)} inside a Cluster`);
        }
    }
    index.childStart.push(pos);
    index.childEnd.push(child.dataEnd);
    index.childBlock.push(block);
    pos = child.dataEnd;
  }
  if (index.timestamp < 0) throw corrupt(bodyStart, 'Cluster has no Timestamp (mandatory, RFC 9559 §5.1.3)');
  return index;
}

function readClusterHeader(bytes: Uint8Array): { bodyStart: number; end: number } {
  const id = readId(bytes, 0);
  if (typeof id === 'number') throw corrupt(0, id === NEED_MORE ? 'truncated Cluster ID' : 'invalid element ID');
  if (id.value !== MKV_ID.Cluster) throw corrupt(0, `expected a Cluster, found element 0x${id.value.toString(16)}`);
  const size = readSize(bytes, id.length);
  if (typeof size === 'number') {
    throw corrupt(id.length, size === NEED_MORE ? 'truncated Cluster size' : 'invalid Cluster size VINT');
  }
  const bodyStart = id.length + size.length;
  if (size.value === UNKNOWN_SIZE) return { bodyStart, end: bytes.length };
  const available = bytes.length - bodyStart;
  if (size.value !== available) {
    throw corrupt(id.length, `Cluster declares ${size.value} bytes of data but ${available} were given`);
  }
  return { bodyStart, end: bytes.length };
}

/** An element header whose data lies wholly within [pos, end); known size only. */
function readChildHeader(bytes: Uint8Array, pos: number, end: number, what: string): ElementHeader {
  const id = readId(bytes, pos, end);
  if (typeof id === 'number') {
    throw corrupt(pos, id === NEED_MORE ? `${what} ID runs past the end` : `${what} has an invalid ID`);
  }
  const size = readSize(bytes, pos + id.length, end);
  if (typeof size === 'number') {
    throw corrupt(pos, size === NEED_MORE ? `${what} size runs past the end` : `${what} has an invalid size VINT`);
  }
  if (size.value === UNKNOWN_SIZE) throw corrupt(pos, `${what} 0x${id.value.toString(16)} has unknown size`);
  const dataStart = pos + id.length + size.length;
  if (size.value > end - dataStart) {
    throw corrupt(pos, `${what} 0x${id.value.toString(16)} declares ${size.value} bytes, only ${end - dataStart} remain`);
  }
  return { id: id.value, dataStart, dataEnd: dataStart + size.value };
}

function readTimestamp(bytes: Uint8Array, pos: number, child: ElementHeader, previous: number): number {
  if (previous >= 0) throw corrupt(pos, 'second Timestamp in one Cluster');
  const length = child.dataEnd - child.dataStart;
  if (length > 8) throw corrupt(pos, `Timestamp of ${length} bytes (at most 8)`);
  const value = readUint(bytes, child.dataStart, length);
  if (value > Number.MAX_SAFE_INTEGER) throw corrupt(pos, 'Timestamp beyond 2^53');
  return value;
}

/**
 * Indexes a SimpleBlock or a BlockGroup's Block: track VINT, int16 relative
 * timestamp, flags (RFC 9559 §10.1). `keyframe` null means a SimpleBlock,
 * whose flags byte carries the keyframe bit 0x80 (§10). Returns the block's index.
 */
function addBlock(
  index: ClusterIndex,
  bytes: Uint8Array,
  childPos: number,
  dataStart: number,
  dataEnd: number,
  keyframe: boolean | null,
): number {
  const track = readSize(bytes, dataStart, dataEnd);
  if (track === NEED_MORE) throw corrupt(childPos, 'block shorter than its header');
  if (typeof track === 'number' || track.value === UNKNOWN_SIZE) throw corrupt(childPos, 'block has an invalid track number');
  const tsPos = dataStart + track.length;
  if (tsPos + 3 > dataEnd) throw corrupt(childPos, 'block shorter than its header');
  const block = index.blockTrack.length;
  index.blockChild.push(index.childStart.length);
  index.blockTrack.push(track.value);
  index.blockRel.push(((bytes[tsPos]! << 24) >> 16) | bytes[tsPos + 1]!);
  index.blockKey.push(keyframe ?? (bytes[tsPos + 2]! & 0x80) !== 0);
  index.blockTsOffset.push(tsPos - childPos);
  return block;
}

/** A BlockGroup is a keyframe when it has no ReferenceBlock child (RFC 9559 §5.1.3, ReferenceBlock). */
function addBlockGroup(index: ClusterIndex, bytes: Uint8Array, childPos: number, group: ElementHeader): number {
  let blockStart = -1;
  let blockEnd = -1;
  let blockPos = -1;
  let references = false;
  for (let pos = group.dataStart; pos < group.dataEnd; ) {
    const child = readChildHeader(bytes, pos, group.dataEnd, 'BlockGroup child');
    if (child.id === MKV_ID.Block) {
      if (blockPos >= 0) throw corrupt(pos, 'BlockGroup with two Blocks');
      blockPos = pos;
      blockStart = child.dataStart;
      blockEnd = child.dataEnd;
    } else if (child.id === MKV_ID.ReferenceBlock) {
      references = true;
    }
    pos = child.dataEnd;
  }
  if (blockPos < 0) throw corrupt(childPos, 'BlockGroup without a Block');
  const block = addBlock(index, bytes, blockPos, blockStart, blockEnd, !references);
  // addBlock measured the timestamp from the Block; patches work on the whole BlockGroup.
  index.blockTsOffset[block]! += blockPos - childPos;
  return block;
}

// ---------------------------------------------------------------- splitting

/**
 * Blocks before which a new piece should start, in order: every video
 * keyframe that is not the first video block of its piece (so a piece that
 * starts on video starts on a keyframe), and, when `splitInterval` is set,
 * the first block `splitInterval` ticks or more past its piece's start (short
 * pieces keep the fan-out and the pacing smooth; audio-only streams get a
 * join point that often).
 */
function splitCandidates(index: ClusterIndex, job: ClusterJob): number[] {
  const { blockTrack, blockKey, blockRel } = index;
  const candidates: number[] = [];
  let pieceStart = blockRel[0] ?? 0;
  let seenVideo = false;
  for (let b = 0; b < blockTrack.length; b++) {
    const video = job.videoTrack !== 0 && blockTrack[b] === job.videoTrack;
    const byKey = video && blockKey[b] === true && seenVideo;
    const byTime = job.splitInterval > 0 && b > 0 && blockRel[b]! >= pieceStart + job.splitInterval;
    if (byKey || byTime) {
      candidates.push(b);
      pieceStart = blockRel[b]!;
      seenVideo = false;
    }
    if (video) seenVideo = true;
  }
  return candidates;
}

/**
 * Keeps the candidates whose piece can be rebased: every block from the split
 * to the next kept split must still fit an int16 relative to it, and the new
 * Cluster Timestamp must not be negative. Walks backwards so each piece's
 * extent is known when it is judged; a refused split leaves its blocks in the
 * piece before. (Audio candidates were chosen as if every split is kept; a
 * refusal, which needs a Cluster spanning more than 32767 ticks, only makes a
 * piece longer.)
 */
function acceptSplits(index: ClusterIndex, candidates: number[], offset: number): number[] {
  const rel = index.blockRel;
  const accepted: number[] = [];
  let lo = Infinity;
  let hi = -Infinity;
  let c = candidates.length - 1;
  for (let b = rel.length - 1; b >= 0 && c >= 0; b--) {
    const r = rel[b]!;
    if (r < lo) lo = r;
    if (r > hi) hi = r;
    if (b !== candidates[c]) continue;
    c--;
    if (lo - r >= INT16_MIN && hi - r <= INT16_MAX && index.timestamp + r + offset >= 0) {
      accepted.push(b);
      lo = Infinity;
      hi = -Infinity;
    }
  }
  return accepted.reverse();
}

// ---------------------------------------------------------------- building

/**
 * Writes children [from, to) as one Cluster: ID, 8-byte size, Timestamp, then
 * the children, copied in contiguous runs; block timestamps are rebased when
 * the piece's base (its first block's relative timestamp) is not 0.
 */
function buildPiece(job: ClusterJob, index: ClusterIndex, from: number, to: number, base: number): ClusterPiece {
  const { bytes, videoTrack, timestampOffset } = job;
  const { childStart, childEnd, childBlock, blockRel, blockTrack, blockKey, blockTsOffset } = index;
  const timestamp = index.timestamp + base + timestampOffset;
  // The stream's Timestamp (as readTimestamp refuses one past 2^53), not the job, took it there.
  if (!Number.isSafeInteger(timestamp)) throw corrupt(0, `Cluster Timestamp ${timestamp} is beyond 2^53`);
  const timestampElement = encodeUintElement(MKV_ID.Timestamp, timestamp);
  let bodyLength = timestampElement.length;
  for (let c = from; c < to; c++) bodyLength += childEnd[c]! - childStart[c]!;

  const out = Buffer.allocUnsafe(PIECE_HEAD_LENGTH + bodyLength);
  out.set(CLUSTER_ID, 0);
  out.set(encodeSize8(bodyLength), CLUSTER_ID.length);
  out.set(timestampElement, PIECE_HEAD_LENGTH);
  const childrenStart = PIECE_HEAD_LENGTH + timestampElement.length;

  let pos = childrenStart;
  let runStart = -1;
  let runEnd = -1;
  for (let c = from; c < to; c++) {
    if (childStart[c] !== runEnd) {
      if (runStart >= 0) pos += copyRun(out, pos, bytes, runStart, runEnd);
      runStart = childStart[c]!;
    }
    runEnd = childEnd[c]!;
  }
  if (runStart >= 0) copyRun(out, pos, bytes, runStart, runEnd);

  let keyframe = videoTrack === 0;
  let seenVideo = false;
  let lastTimestamp = -Infinity;
  pos = childrenStart;
  for (let c = from; c < to; c++) {
    const b = childBlock[c]!;
    if (b >= 0) {
      const rel = blockRel[b]!;
      const absolute = index.timestamp + rel + timestampOffset;
      if (absolute > lastTimestamp) lastTimestamp = absolute;
      if (!seenVideo && blockTrack[b] === videoTrack) {
        seenVideo = true;
        keyframe = blockKey[b]!;
      }
      if (base !== 0) out.writeInt16BE(rel - base, pos + blockTsOffset[b]!);
    }
    pos += childEnd[c]! - childStart[c]!;
  }
  if (lastTimestamp === -Infinity) lastTimestamp = timestamp;
  return { bytes: out, timestamp, keyframe, lastTimestamp };
}

function copyRun(out: Buffer, pos: number, bytes: Uint8Array, start: number, end: number): number {
  out.set(bytes.subarray(start, end), pos);
  return end - start;
}
