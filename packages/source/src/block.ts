/**
 * What the source needs to know of one Cluster child: whether it is a block,
 * and of a block its track, time, keyframe flag and length in frames (RFC
 * 9559 §10). Pure helpers over one child's bytes; nothing is copied.
 */
import { CorruptStreamError, MKV_ID, NEED_MORE, UNKNOWN_SIZE, readId, readSize, readUint } from '@mkvcast/shared';

export interface BlockInfo {
  track: number;
  /** Relative to the Cluster Timestamp, in ticks: a signed 16-bit value (RFC 9559 §10.1). */
  relative: number;
  /** SimpleBlock: its keyframe flag; BlockGroup: it has no ReferenceBlock (RFC 9559 §5.1.3.5.1.3). */
  keyframe: boolean;
  /** Frames in the block: more than 1 when it is laced (RFC 9559 §10.3). */
  frames: number;
  /** BlockDuration in ticks (BlockGroup only, RFC 9559 §5.1.3.5.1.2), or -1 when absent. */
  duration: number;
}

/** Flag bits 0x06 of a block's flags byte: 00 means no lacing (RFC 9559 §10.1, §10.2). */
const LACING_BITS = 0x06;

interface Element {
  id: number;
  /** Where its data starts and ends, in the buffer read. */
  dataStart: number;
  dataEnd: number;
}

/**
 * A SimpleBlock's or BlockGroup's block facts; null for any other child.
 * Throws CorruptStreamError when a block's bytes contradict its framing.
 */
export function readBlock(id: number, child: Uint8Array): BlockInfo | null {
  if (id !== MKV_ID.SimpleBlock && id !== MKV_ID.BlockGroup) return null;
  const element = readElement(child, 0, child.length, 'block');
  if (element.dataEnd !== child.length) throw corrupt(`a ${name(id)} of ${child.length} bytes declares ${element.dataEnd}`);
  if (id === MKV_ID.SimpleBlock) return readBlockHeader(child, element.dataStart, element.dataEnd, null, -1);
  return readBlockGroup(child, element);
}

/** A BlockGroup's Block, its ReferenceBlocks and its BlockDuration (RFC 9559 §5.1.3.5). */
function readBlockGroup(child: Uint8Array, group: Element): BlockInfo {
  let block: Element | undefined;
  let references = false;
  let duration = -1;
  for (let pos = group.dataStart; pos < group.dataEnd; ) {
    const element = readElement(child, pos, group.dataEnd, 'BlockGroup child');
    if (element.id === MKV_ID.Block) {
      if (block) throw corrupt('a BlockGroup with two Blocks');
      block = element;
    } else if (element.id === MKV_ID.ReferenceBlock) {
      references = true;
    } else if (element.id === MKV_ID.BlockDuration) {
      const length = element.dataEnd - element.dataStart;
      if (length > 8) throw corrupt(`a BlockDuration of ${length} bytes`);
      duration = readUint(child, element.dataStart, length);
    }
    pos = element.dataEnd;
  }
  if (!block) throw corrupt('a BlockGroup without a Block');
  return readBlockHeader(child, block.dataStart, block.dataEnd, !references, duration);
}

/**
 * The block header: track number (a VINT), int16 relative timestamp, flags,
 * and with lacing the frame count minus one (RFC 9559 §10.1, §10.3).
 * `keyframe` null: a SimpleBlock, whose flags carry it (bit 0x80).
 */
function readBlockHeader(bytes: Uint8Array, start: number, end: number, keyframe: boolean | null, duration: number): BlockInfo {
  const track = readSize(bytes, start, end);
  if (track === NEED_MORE) throw corrupt('a block shorter than its header');
  if (typeof track === 'number' || track.value === UNKNOWN_SIZE) throw corrupt('a block with an invalid track number');
  const at = start + track.length;
  if (at + 3 > end) throw corrupt('a block shorter than its header');
  const flags = bytes[at + 2]!;
  let frames = 1;
  if ((flags & LACING_BITS) !== 0) {
    if (at + 4 > end) throw corrupt('a laced block without its frame count');
    frames = bytes[at + 3]! + 1;
  }
  return {
    track: track.value,
    relative: ((bytes[at]! << 24) >> 16) | bytes[at + 1]!,
    keyframe: keyframe ?? (flags & 0x80) !== 0,
    frames,
    duration,
  };
}

/** An element whose data lies wholly within [pos, end): known size only. */
function readElement(bytes: Uint8Array, pos: number, end: number, what: string): Element {
  const id = readId(bytes, pos, end);
  if (typeof id === 'number') throw corrupt(`a ${what} with a bad ID`);
  const size = readSize(bytes, pos + id.length, end);
  if (typeof size === 'number') throw corrupt(`a ${what} with a bad size`);
  if (size.value === UNKNOWN_SIZE) throw corrupt(`a ${what} of unknown size`);
  const dataStart = pos + id.length + size.length;
  if (size.value > end - dataStart) throw corrupt(`a ${what} that runs past its parent`);
  return { id: id.value, dataStart, dataEnd: dataStart + size.value };
}

function name(id: number): string {
  return id === MKV_ID.SimpleBlock ? 'SimpleBlock' : 'BlockGroup';
}

function corrupt(what: string): CorruptStreamError {
  return new CorruptStreamError(`${what} in a Cluster`);
}
