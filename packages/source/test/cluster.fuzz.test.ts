/**
 * Property-based tests of processCluster, what the piscina worker runs:
 * generated valid Clusters under random jobs, their truncations, mutations,
 * huge declared sizes, timestamps near 2^53 and garbage. Pieces are read back
 * with a small reader of its own, not the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CorruptStreamError } from '@mkvcast/shared';
import { processCluster, type ClusterJob, type ClusterPiece } from '../src/cluster.js';
import {
  checkProperty,
  el,
  extraArb,
  idBytes,
  isTypedError,
  largestAllocation,
  mutate,
  mutationArb,
  plainIdArb,
  sizeVint,
  unknownSize,
  vint,
} from '@mkvcast/shared/testing';

const ID = {
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  Position: 0xa7,
  PrevSize: 0xab,
  CRC32: 0xbf,
  Void: 0xec,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  ReferenceBlock: 0xfb,
  BlockDuration: 0x9b,
} as const;

const VIDEO = 1;
/** A piece's head: Cluster ID (4), 8-byte size, Timestamp (1 + 1 + 8). */
const PIECE_OVERHEAD = 4 + 8 + 10;

// ---- generating valid Clusters (RFC 9559 §5.1.3, §10) ------------------------------------

/** A child as written, and what a piece must carry for it. */
interface Child {
  bytes: Buffer;
  /** Dropped from pieces: Position, PrevSize, CRC-32, Void. */
  dropped: boolean;
  block?: { track: number; rel: number; key: boolean; /** From the element's first byte. */ tsOffset: number };
}

/** Track number VINT, int16 timestamp, flags (RFC 9559 §10.1). */
const blockHeadArb = fc
  .record({
    track: fc.oneof({ arbitrary: fc.constantFrom(1, 2), weight: 4 }, { arbitrary: fc.integer({ min: 3, max: 126 }), weight: 1 }),
    trackLength: fc.integer({ min: 1, max: 2 }),
    rel: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: -0x8000, max: 0x7fff })),
    flags: fc.nat(255),
  })
  .map(({ track, trackLength, rel, flags }) => {
    const ts = Buffer.alloc(2);
    ts.writeInt16BE(rel);
    const trackVint = vint(BigInt(track), trackLength);
    return { track, rel, flags, bytes: Buffer.concat([trackVint, ts, Buffer.from([flags])]), tsAt: trackVint.length };
  });

const frameArb = fc
  .oneof({ arbitrary: fc.uint8Array({ maxLength: 12 }), weight: 5 }, { arbitrary: fc.uint8Array({ maxLength: 400 }), weight: 1 })
  .map((b) => Buffer.from(b));

/** An element nested a few levels, of IDs that are no Cluster child we know. */
const plainTreeArb: fc.Arbitrary<Buffer> = fc.letrec<{ node: Buffer }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', maxDepth: 4 },
    fc.tuple(plainIdArb, frameArb, extraArb).map(([id, body, extra]) => el(id, body, extra)),
    fc.tuple(plainIdArb, fc.array(tie('node'), { maxLength: 3 }), extraArb).map(([id, c, extra]) => el(id, Buffer.concat(c), extra)),
  ),
})).node;

const KNOWN_CHILD_IDS: ReadonlySet<number> = new Set(Object.values(ID));
const keptPlainArb = plainTreeArb.filter((bytes) => !KNOWN_CHILD_IDS.has(readId(bytes, 0).value));

const simpleBlockArb = fc.tuple(blockHeadArb, frameArb, extraArb).map(([head, frame, extra]): Child => {
  const bytes = el(ID.SimpleBlock, Buffer.concat([head.bytes, frame]), extra);
  const headerLength = bytes.length - head.bytes.length - frame.length;
  return { bytes, dropped: false, block: { track: head.track, rel: head.rel, key: (head.flags & 0x80) !== 0, tsOffset: headerLength + head.tsAt } };
});

/** A BlockGroup: keyframe when it has no ReferenceBlock. */
const blockGroupArb = fc
  .tuple(blockHeadArb, frameArb, fc.nat(2), fc.boolean(), fc.array(keptPlainArb, { maxLength: 2 }), fc.nat(), extraArb)
  .map(([head, frame, references, duration, others, blockAt, extra]): Child => {
    const block = el(ID.Block, Buffer.concat([head.bytes, frame]));
    const siblings = [
      ...Array.from({ length: references }, () => el(ID.ReferenceBlock, [0xfe])),
      ...(duration ? [el(ID.BlockDuration, [33])] : []),
      ...others,
    ];
    const at = blockAt % (siblings.length + 1);
    const body = Buffer.concat([...siblings.slice(0, at), block, ...siblings.slice(at)]);
    const bytes = el(ID.BlockGroup, body, extra);
    const blockStart = bytes.length - body.length + siblings.slice(0, at).reduce((n, b) => n + b.length, 0);
    const tsOffset = blockStart + (block.length - head.bytes.length - frame.length) + head.tsAt;
    return { bytes, dropped: false, block: { track: head.track, rel: head.rel, key: references === 0, tsOffset } };
  });

const droppedArb = fc
  .oneof(
    fc.nat(0xffff).map((n) => el(ID.Position, [n >> 8, n & 0xff])),
    fc.nat(0xff).map((n) => el(ID.PrevSize, [n])),
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => el(ID.CRC32, b)),
    frameArb.map((b) => el(ID.Void, b)),
  )
  .map((bytes): Child => ({ bytes, dropped: true }));

const childArb: fc.Arbitrary<Child> = fc.oneof(
  { arbitrary: simpleBlockArb, weight: 6 },
  { arbitrary: blockGroupArb, weight: 2 },
  { arbitrary: droppedArb, weight: 1 },
  { arbitrary: keptPlainArb.map((bytes): Child => ({ bytes, dropped: false })), weight: 1 },
);

interface ClusterModel {
  bytes: Buffer;
  timestamp: number;
  /** Children in order, Timestamp left out. */
  children: Child[];
}

function clusterArb(timestampArb: fc.Arbitrary<number>): fc.Arbitrary<ClusterModel> {
  return fc
    .record({
      timestamp: timestampArb,
      timestampPad: fc.nat(7),
      timestampAt: fc.nat(),
      children: fc.array(childArb, { maxLength: 12 }),
      unknown: fc.boolean(),
      unknownLength: fc.integer({ min: 1, max: 8 }),
      extra: extraArb,
    })
    .map(({ timestamp, timestampPad, timestampAt, children, unknown, unknownLength, extra }) => {
      // A uint of 0–8 bytes, leading zeros allowed (RFC 8794 §7.2).
      const value = Buffer.from(timestamp === 0 ? '' : timestamp.toString(16).padStart(Math.ceil(timestamp.toString(16).length / 2) * 2, '0'), 'hex');
      const timestampElement = el(ID.Timestamp, Buffer.concat([Buffer.alloc(Math.min(timestampPad, 8 - value.length)), value]));
      const parts = children.map((c) => c.bytes);
      parts.splice(timestampAt % (parts.length + 1), 0, timestampElement);
      const body = Buffer.concat(parts);
      const size = unknown ? unknownSize(unknownLength) : sizeVint(body.length, extra);
      return { bytes: Buffer.concat([idBytes(ID.Cluster), size, body]), timestamp, children };
    });
}

const validClusterArb = clusterArb(fc.oneof(fc.nat(100_000), fc.integer({ min: 0, max: 2 ** 45 })));

const jobArb = fc.record({
  videoTrack: fc.constantFrom(0, VIDEO, 2),
  timestampOffset: fc.oneof(fc.constant(0), fc.nat(100_000), fc.integer({ min: 0, max: 2 ** 40 })),
  splitInterval: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40_000 })),
});

// ---- reading pieces back -------------------------------------------------------------

function readVint(buf: Uint8Array, pos: number, keepMarker: boolean): { value: number; length: number } {
  const first = buf[pos]!;
  let length = 1;
  while (length <= 8 && (first & (0x100 >> length)) === 0) length++;
  assert.ok(length <= 8, `bad VINT at ${pos}`);
  let value = keepMarker ? first : first & (0xff >> length);
  for (let i = 1; i < length; i++) value = value * 256 + buf[pos + i]!;
  return { value, length };
}

function readId(buf: Uint8Array, pos: number): { value: number; length: number } {
  return readVint(buf, pos, true);
}

/** The children of a piece after its Timestamp; checks the piece's head on the way. */
function pieceChildren(piece: ClusterPiece): Buffer[] {
  const b = Buffer.from(piece.bytes.buffer, piece.bytes.byteOffset, piece.bytes.byteLength);
  assert.equal(b.readUInt32BE(0), ID.Cluster);
  assert.equal(b[4], 0x01, '8-byte size');
  assert.equal(readVint(b, 4, false).value, b.length - 12, 'known size, exact');
  assert.deepEqual([...b.subarray(12, 14)], [ID.Timestamp, 0x88], 'Timestamp first, 8 bytes');
  assert.equal(Number(b.readBigUInt64BE(14)), piece.timestamp);
  const children: Buffer[] = [];
  for (let pos = 22; pos < b.length; ) {
    const id = readId(b, pos);
    const size = readVint(b, pos + id.length, false);
    const end = pos + id.length + size.length + size.value;
    assert.ok(end <= b.length, 'child inside the piece');
    children.push(b.subarray(pos, end));
    pos = end;
  }
  return children;
}

/** Every kept child arrives once, in order, byte for byte but for rebased block timestamps that keep their absolute time. */
function assertPieces(model: ClusterModel, job: ClusterJob, pieces: ClusterPiece[]): void {
  assert.ok(pieces.length >= 1);
  const kept = model.children.filter((c) => !c.dropped);
  let k = 0;
  for (const [p, piece] of pieces.entries()) {
    let firstVideo: boolean | undefined;
    let last = -Infinity;
    let videoSeen = false;
    for (const [i, got] of pieceChildren(piece).entries()) {
      const want = kept[k++];
      assert.ok(want, 'no more children than the input has');
      assert.equal(got.length, want.bytes.length);
      const block = want.block;
      if (!block) {
        assert.ok(got.equals(want.bytes));
        continue;
      }
      const at = block.tsOffset;
      assert.ok(got.subarray(0, at).equals(want.bytes.subarray(0, at)) && got.subarray(at + 2).equals(want.bytes.subarray(at + 2)));
      const absolute = piece.timestamp + got.readInt16BE(at);
      assert.equal(absolute, model.timestamp + block.rel + job.timestampOffset, 'block keeps its absolute time');
      last = Math.max(last, absolute);
      if (p > 0 && i === 0 && job.splitInterval === 0) assert.ok(block.key && block.track === job.videoTrack, 'a later piece opens on a video keyframe');
      if (block.track === job.videoTrack) {
        firstVideo ??= block.key;
        // Without int16 trouble (no negative relative timestamps) every later keyframe starts a piece.
        if (videoSeen && model.children.every((c) => !c.block || c.block.rel >= 0)) assert.ok(!block.key, 'a video keyframe inside a piece');
        videoSeen = true;
      }
    }
    assert.equal(piece.keyframe, job.videoTrack === 0 ? true : firstVideo === true, 'keyframe flag');
    assert.equal(piece.lastTimestamp, last === -Infinity ? piece.timestamp : last, 'lastTimestamp');
  }
  assert.equal(k, kept.length, 'every kept child is in a piece');
  if (job.videoTrack === 0 && job.splitInterval === 0) assert.equal(pieces.length, 1);
}

interface Outcome {
  pieces?: ClusterPiece[];
  error?: unknown;
  largestAllocation: number;
}

function run(bytes: Buffer, job: Omit<ClusterJob, 'bytes'>): Outcome {
  const before = Buffer.from(bytes);
  let pieces: ClusterPiece[] | undefined;
  let error: unknown;
  const largest = largestAllocation(() => {
    try {
      pieces = processCluster({ ...job, bytes });
    } catch (err) {
      error = err;
    }
  });
  assert.ok(bytes.equals(before), 'input left unchanged');
  return { largestAllocation: largest, ...(pieces ? { pieces } : {}), ...(error !== undefined ? { error } : {}) };
}

/** Only CorruptStreamError, nothing allocated beyond the input's size, pieces well formed. */
function assertSafe(bytes: Buffer, outcome: Outcome): void {
  if (outcome.error !== undefined) assert.ok(isTypedError(outcome.error, [CorruptStreamError]), `untyped error: ${String(outcome.error)}`);
  const bound = bytes.length + PIECE_OVERHEAD;
  assert.ok(outcome.largestAllocation <= bound, `allocated ${outcome.largestAllocation} bytes for a ${bytes.length}-byte Cluster`);
  for (const piece of outcome.pieces ?? []) pieceChildren(piece);
}

// ---- properties -------------------------------------------------------------------------

test('valid Clusters: pieces carry every kept child in order at its absolute time, split at video keyframes', (t) => {
  checkProperty(
    t,
    fc.property(validClusterArb, jobArb, (model, job) => {
      const outcome = run(model.bytes, job);
      assert.equal(outcome.error, undefined, String(outcome.error));
      assertSafe(model.bytes, outcome);
      assertPieces(model, { ...job, bytes: model.bytes }, outcome.pieces!);
    }),
    300,
  );
});

test('every truncation of a valid Cluster: CorruptStreamError or well-formed pieces', (t) => {
  checkProperty(
    t,
    fc.property(validClusterArb, jobArb, (model, job) => {
      for (let length = 0; length < model.bytes.length; length++) {
        const cut = model.bytes.subarray(0, length);
        assertSafe(cut, run(cut, job));
      }
    }),
    60,
    0.1,
  );
});

test('mutated Clusters: CorruptStreamError or well-formed pieces, nothing allocated beyond the input', (t) => {
  checkProperty(
    t,
    fc.property(validClusterArb, fc.array(mutationArb, { minLength: 1, maxLength: 6 }), jobArb, (model, mutations, job) => {
      const bytes = mutate(model.bytes, mutations);
      assertSafe(bytes, run(bytes, job));
    }),
    300,
  );
});

test('declared sizes up to 2^56-1 and unknown sizes, on the Cluster and its children', (t) => {
  const sizeArb = fc.oneof(
    fc.tuple(fc.bigInt(0n, 2n ** 56n - 1n), fc.constant(8)),
    fc.tuple(fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 56n - 2n, 2n ** 56n - 1n), fc.constant(8)),
    fc.integer({ min: 1, max: 8 }).map((length) => [(1n << BigInt(7 * length)) - 1n, length] as const),
  );
  const idArb = fc.constantFrom(ID.Timestamp, ID.SimpleBlock, ID.BlockGroup, ID.Block, ID.Void, ID.Cluster, 0x1549a966 /* Info */);
  checkProperty(
    t,
    fc.property(validClusterArb, fc.boolean(), idArb, sizeArb, fc.uint8Array({ maxLength: 32 }), jobArb, (model, onCluster, id, [size, length], tail, job) => {
      const bytes = onCluster
        ? Buffer.concat([idBytes(ID.Cluster), vint(size, length), tail]) // the Cluster's own size
        : Buffer.concat([model.bytes, idBytes(id), vint(size, length), tail]); // a last child's (the Cluster's size no longer matches, or is unknown)
      assertSafe(bytes, run(bytes, job));
    }),
    200,
  );
});

test('Cluster Timestamps near 2^53: CorruptStreamError, never another error', (t) => {
  const nearLimitArb = fc.integer({ min: Number.MAX_SAFE_INTEGER - 0x10000, max: Number.MAX_SAFE_INTEGER });
  checkProperty(
    t,
    fc.property(clusterArb(nearLimitArb), jobArb, (model, job) => {
      const outcome = run(model.bytes, job);
      assertSafe(model.bytes, outcome);
      // Block times past 2^53 are not exact in a number: only the piece Timestamps are checked.
      for (const piece of outcome.pieces ?? []) assert.ok(Number.isSafeInteger(piece.timestamp));
    }),
    200,
  );
});

test('garbage after a Cluster head: CorruptStreamError only', (t) => {
  const headArb = fc.constantFrom(
    Buffer.alloc(0),
    Buffer.concat([idBytes(ID.Cluster), unknownSize(8)]),
    Buffer.concat([idBytes(ID.Cluster), unknownSize(1), el(ID.Timestamp, [1])]),
  );
  checkProperty(
    t,
    fc.property(headArb, fc.uint8Array({ maxLength: 200 }), jobArb, (head, garbage, job) => {
      const bytes = Buffer.concat([head, garbage]);
      assertSafe(bytes, run(bytes, job));
    }),
    200,
  );
});
