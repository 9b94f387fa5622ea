/**
 * Plumbing for the *.fuzz.test.ts files (fast-check properties). Under
 * `npm test` each property runs its own small default number of cases;
 * FUZZ_RUNS=N (what `npm run fuzz -- --runs N` sets) runs N cases of every
 * property instead, and FUZZ_SEED=S replays a run. Each property reports its
 * count as a test diagnostic "fuzz cases: N", which the fuzz runner sums.
 * Also a small EBML writer and VINT reader, independent of the code under test.
 * The other packages' fuzz tests import it as `@mkvcast/shared/testing`.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { TestContext } from 'node:test';

export const FUZZ_CASES_PREFIX = 'fuzz cases: ';

/**
 * Cases for one property: its default, or FUZZ_RUNS × `longRunShare`. A
 * property whose every case does the work of many (each truncation of an
 * input) takes a share below 1, so that a long run stays long, not endless.
 */
export function fuzzRuns(defaultRuns: number, longRunShare = 1): number {
  const env = process.env.FUZZ_RUNS;
  if (env === undefined || env === '') return defaultRuns;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`FUZZ_RUNS must be a positive integer, got '${env}'`);
  return Math.max(1, Math.ceil(n * longRunShare));
}

/** Runs a property (throws fast-check's report, seed and shrunk counterexample included, on failure). */
export function checkProperty<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  property: fc.IProperty<Ts>,
  defaultRuns: number,
  longRunShare = 1,
): void {
  const numRuns = fuzzRuns(defaultRuns, longRunShare);
  const seed = process.env.FUZZ_SEED;
  fc.assert(property, { numRuns, includeErrorInReport: true, ...(seed ? { seed: Number(seed) } : {}) });
  t.diagnostic(`${FUZZ_CASES_PREFIX}${numRuns}`);
}

/**
 * How an input is cut into pushes: 'bytes' (one byte each) or cut points,
 * taken modulo the input length and sorted (repeats give empty pushes).
 */
export type Chunking = 'bytes' | number[];

export const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { arbitrary: fc.constant<'bytes'>('bytes'), weight: 1 },
  { arbitrary: fc.array(fc.nat(), { maxLength: 40 }), weight: 6 },
);

export function split(input: Buffer, chunking: Chunking): Buffer[] {
  if (chunking === 'bytes') return Array.from({ length: input.length }, (_, i) => input.subarray(i, i + 1));
  const cuts = chunking.map((c) => c % (input.length + 1)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(input.subarray(from, cut));
    from = cut;
  }
  return out;
}

/** One random edit of a byte string; positions are taken modulo its length. */
export type Mutation =
  | { kind: 'flip'; pos: number; bit: number }
  | { kind: 'set'; pos: number; value: number }
  | { kind: 'insert'; pos: number; bytes: Uint8Array }
  | { kind: 'delete'; pos: number; length: number }
  | { kind: 'copy'; from: number; to: number; length: number };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant<'flip'>('flip'), pos: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant<'set'>('set'), pos: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff, 0x1a, 0x1f) }),
  fc.record({ kind: fc.constant<'insert'>('insert'), pos: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant<'delete'>('delete'), pos: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant<'copy'>('copy'), from: fc.nat(), to: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
);

export function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(input);
  for (const m of mutations) {
    const at = (pos: number): number => (out.length === 0 ? 0 : pos % out.length);
    switch (m.kind) {
      case 'flip':
        if (out.length > 0) out[at(m.pos)]! ^= 1 << m.bit;
        break;
      case 'set':
        if (out.length > 0) out[at(m.pos)] = m.value;
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at(m.pos)), m.bytes, out.subarray(at(m.pos))]);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at(m.pos)), out.subarray(at(m.pos) + m.length)]);
        break;
      case 'copy': {
        const piece = Buffer.from(out.subarray(at(m.from), at(m.from) + m.length));
        out = Buffer.concat([out.subarray(0, at(m.to)), piece, out.subarray(at(m.to))]);
        break;
      }
    }
  }
  return out;
}

/**
 * Runs `fn` with Buffer's allocators wrapped and returns the largest single
 * allocation it made (Buffer.concat allocates through Buffer.allocUnsafe), so
 * a test can show that a declared size never turns into an allocation.
 */
export function largestAllocation(fn: () => void): number {
  const saved = { alloc: Buffer.alloc, allocUnsafe: Buffer.allocUnsafe, allocUnsafeSlow: Buffer.allocUnsafeSlow };
  let largest = 0;
  const seen = (size: number): void => {
    if (size > largest) largest = size;
  };
  Buffer.alloc = (size, ...rest) => (seen(size), saved.alloc(size, ...rest));
  Buffer.allocUnsafe = (size) => (seen(size), saved.allocUnsafe(size));
  Buffer.allocUnsafeSlow = (size) => (seen(size), saved.allocUnsafeSlow(size));
  try {
    fn();
  } finally {
    Object.assign(Buffer, saved);
  }
  return largest;
}

/** True when `err` is one of the project's errors and carries the expected kind of code. */
export function isTypedError(err: unknown, classes: ReadonlyArray<abstract new (...args: never[]) => Error>): boolean {
  if (!classes.some((c) => err instanceof c)) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('MKV_ERR_');
}

// ---- writing EBML (RFC 8794 §4–§6) ----------------------------------------------------

/** IDs that may stand at level 1 or top level in Matroska: they end an unknown-size Cluster (RFC 8794 §6.2). */
export const LEVEL1_OR_TOP_IDS: ReadonlySet<number> = new Set([
  0x1a45dfa3, // EBML
  0x18538067, // Segment
  0x114d9b74, // SeekHead
  0x1549a966, // Info
  0x1654ae6b, // Tracks
  0x1f43b675, // Cluster
  0x1c53bb6b, // Cues
  0x1043a770, // Chapters
  0x1254c367, // Tags
  0x1941a469, // Attachments
]);

/** `value` as a VINT of `length` bytes: the marker bit, then the value big-endian. */
export function vint(value: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  let v = value | (1n << BigInt(7 * length));
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Shortest VINT length for a size; all ones is reserved for "unknown". */
function sizeLength(value: number): number {
  let n = 1;
  while (value > 2 ** (7 * n) - 2) n++;
  return n;
}

/** A size VINT `extra` bytes longer than needed (legal, RFC 8794 §6.1), at most 8. */
export function sizeVint(value: number, extra: number): Buffer {
  return vint(BigInt(value), Math.min(8, sizeLength(value) + extra));
}

/** The "unknown" size: every value bit set (RFC 8794 §6.2). */
export function unknownSize(length: number): Buffer {
  return vint((1n << BigInt(7 * length)) - 1n, length);
}

export function idBytes(id: number): Buffer {
  const n = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1;
  const out = Buffer.alloc(n);
  out.writeUIntBE(id, 0, n);
  return out;
}

export function el(id: number, body: Uint8Array | number[], extra = 0): Buffer {
  return Buffer.concat([idBytes(id), sizeVint(body.length, extra), Buffer.from(body)]);
}

/** Extra size bytes: mostly none. */
export const extraArb = fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.integer({ min: 1, max: 7 }), weight: 1 });

/** Any valid ID (RFC 8794 §5: shortest form, not all ones) that is not level 1 or top level. */
export const plainIdArb = fc
  .oneof(
    fc.integer({ min: 0x80, max: 0xfe }),
    fc.integer({ min: 0x407f, max: 0x7ffe }),
    fc.integer({ min: 0x203fff, max: 0x3ffffe }),
    fc.integer({ min: 0x101fffff, max: 0x1ffffffe }),
  )
  .filter((id) => !LEVEL1_OR_TOP_IDS.has(id));

/**
 * Reads a VINT (RFC 8794 §4) for the tests' own EBML walks: deliberately not the code under
 * test (nor shared/vint.ts). `keepMarker` for IDs; `allOnes` marks an unknown size.
 */
export function readVint(buf: Uint8Array, pos: number, keepMarker: boolean): { value: number; length: number; allOnes: boolean } {
  assert.ok(pos < buf.length, `a VINT past the end at ${pos}`);
  const first = buf[pos]!;
  let length = 1;
  while (length <= 8 && (first & (0x100 >> length)) === 0) length++;
  assert.ok(length <= 8 && pos + length <= buf.length, `bad VINT at ${pos}`);
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = (first & (0xff >> length)) === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + buf[pos + i]!;
    if (buf[pos + i] !== 0xff) allOnes = false;
  }
  return { value, length, allOnes };
}

/** Hand-built bytes the byte-level tests share. EBML header, DocType "webm": 20 bytes. */
export const EBML_WEBM: number[] = [
  0x1a, 0x45, 0xdf, 0xa3, // EBML header ID
  0x8f, //                   size 15
  0x42, 0x86, 0x81, 0x01, // EBMLVersion, size 1, = 1
  0x42, 0x82, 0x84, //       DocType, size 4
  0x77, 0x65, 0x62, 0x6d, // "webm"
  0x42, 0x87, 0x81, 0x02, // DocTypeVersion, size 1, = 2
];

/** Segment of unknown size: 12 bytes. */
export const SEGMENT_UNKNOWN: number[] = [
  0x18, 0x53, 0x80, 0x67, // Segment ID
  0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size: 8-byte all ones = unknown
];
