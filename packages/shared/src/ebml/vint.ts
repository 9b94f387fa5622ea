/**
 * Variable-size integers (RFC 8794 §4). Pure helpers over bytes: each returns
 * the value and the bytes it took, NEED_MORE when the buffer ends first, or
 * CORRUPT when the bytes break the rules.
 */
export const NEED_MORE = -1;
export const CORRUPT = -2;

/** A data size of all ones means "unknown" (RFC 8794 §6.2); we report it as this value. */
export const UNKNOWN_SIZE = -1;

export interface VintRead {
  /** Decoded value; for sizes, UNKNOWN_SIZE when every value bit is set. */
  value: number;
  /** Bytes consumed, 1–8. */
  length: number;
}

/** Length of a VINT from its first byte (leading zeros + 1), or 0 when the byte is 0x00 (illegal). */
export function vintLength(first: number): number {
  if (first === 0) return 0;
  return Math.clz32(first) - 23;
}

/**
 * Valid Element IDs by length, marker bits included (RFC 8794 §5 and its
 * §17.1 ranges): VINT_DATA is not all 1s and an ID uses its shortest
 * encoding, so 0xFF, 0x4000 or 0x4001 are not IDs. All 0s is reserved too,
 * but RFC 9559 releases 0x80 for Matroska's ChapterDisplay.
 */
const ID_MIN = [0, 0x80, 0x407f, 0x203fff, 0x101fffff];
const ID_MAX = [0, 0xfe, 0x7ffe, 0x3ffffe, 0x1ffffffe];

/**
 * Reads an element ID at `pos`. IDs keep their marker bits (0x1A45DFA3 stays
 * that). IDs are at most 4 bytes (RFC 8794 §5). Returns NEED_MORE or CORRUPT
 * as a number instead of an object.
 */
export function readId(buf: Uint8Array, pos: number, end = buf.length): VintRead | number {
  if (pos >= end) return NEED_MORE;
  const length = vintLength(buf[pos]!);
  if (length === 0 || length > 4) return CORRUPT;
  if (pos + length > end) return NEED_MORE;
  let value = 0;
  for (let i = 0; i < length; i++) value = value * 256 + buf[pos + i]!;
  if (value < ID_MIN[length]! || value > ID_MAX[length]!) return CORRUPT;
  return { value, length };
}

/**
 * Reads an element data size at `pos`. Sizes up to 2^53-1 are exact; an
 * all-ones size is UNKNOWN_SIZE.
 */
export function readSize(buf: Uint8Array, pos: number, end = buf.length): VintRead | number {
  if (pos >= end) return NEED_MORE;
  const first = buf[pos]!;
  const length = vintLength(first);
  if (length === 0) return CORRUPT;
  if (pos + length > end) return NEED_MORE;
  let value = first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const b = buf[pos + i]!;
    if (b !== 0xff) allOnes = false;
    value = value * 256 + b;
  }
  if (allOnes) return { value: UNKNOWN_SIZE, length };
  if (value > Number.MAX_SAFE_INTEGER) return CORRUPT;
  return { value, length };
}

/** Big-endian unsigned integer of 0–8 bytes (RFC 8794 §7.2). */
export function readUint(buf: Uint8Array, pos: number, length: number): number {
  let value = 0;
  for (let i = 0; i < length; i++) value = value * 256 + buf[pos + i]!;
  return value;
}

/** The bytes of an ID as written on the wire. */
export function encodeId(id: number): Buffer {
  const length = id >= 0x1000000 ? 4 : id >= 0x10000 ? 3 : id >= 0x100 ? 2 : 1;
  const out = Buffer.allocUnsafe(length);
  out.writeUIntBE(id, 0, length);
  return out;
}

/** A data size as an 8-byte VINT, so a rewritten element never changes its header length. */
export function encodeSize8(size: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32BE(Math.floor(size / 0x100000000), 0);
  out.writeUInt32BE(size >>> 0, 4);
  out[0] = 0x01; // 8-byte marker; sizes we write stay below 2^48
  return out;
}

/** The 8-byte "unknown size" VINT (RFC 8794 §6.2). */
export const UNKNOWN_SIZE_8 = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** A complete unsigned-integer element: ID, 1-byte size, 8-byte big-endian value. */
export function encodeUintElement(id: number, value: number): Buffer {
  const idBytes = encodeId(id);
  const out = Buffer.allocUnsafe(idBytes.length + 1 + 8);
  idBytes.copy(out, 0);
  out[idBytes.length] = 0x88; // size 8
  out.writeBigUInt64BE(BigInt(value), idBytes.length + 1);
  return out;
}
