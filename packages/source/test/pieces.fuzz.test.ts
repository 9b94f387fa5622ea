/**
 * Property-based tests of what the ingest runs on each Cluster child:
 * BlockForwarder (readBlock, the timeline, PieceBuilder). Generated blocks
 * (SimpleBlock and BlockGroup, laced or not, keyframes or not, several
 * tracks) and other children arrive in random batches, a flush after each,
 * as the ingest flushes after each input chunk. Pieces are read back with a
 * small EBML reader of this file's own, not the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CorruptStreamError } from '@mkvcast/shared';
import { BlockForwarder, type PassRules } from '../src/forwarder.js';
import type { Piece } from '../src/pieces.js';
import { checkProperty, el, extraArb, isTypedError, largestAllocation, mutate, mutationArb, plainIdArb, readVint, vint } from '@mkvcast/shared/testing';

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

/** The most a piece adds to its blocks: Cluster ID (4), size (8), Timestamp (1 + 1 + 8). */
const PIECE_OVERHEAD = 4 + 8 + 10;

// ---- generating Cluster children (RFC 9559 §5.1.3, §10) ----------------------------------

interface BlockModel {
  track: number;
  /** Relative to the Cluster Timestamp (int16). */
  rel: number;
  /** SimpleBlock: flag 0x80; BlockGroup: no ReferenceBlock. */
  key: boolean;
  frames: number;
  /** BlockDuration, or -1. */
  duration: number;
}

interface ChildModel {
  id: number;
  bytes: Buffer;
  /** Set for SimpleBlock and BlockGroup: the children that become part of pieces. */
  block?: BlockModel;
}

interface BlockLimits {
  tracks: number;
  /** Relative timestamps: any int16, or only from 0 up (for monotonic input). */
  rel: fc.Arbitrary<number>;
}

const frameArb = fc
  .oneof({ arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }), weight: 5 }, { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }), weight: 1 })
  .map((b) => Buffer.from(b));

/** Lace sizes for `frames` frames (RFC 9559 §10.3): Xiph (0x02), fixed (0x04) or EBML (0x06) lacing. */
function laced(lacing: number, frames: Buffer[]): Buffer {
  const count = Buffer.from([frames.length - 1]);
  if (lacing === 0x04) {
    const size = frames[0]!.length; // fixed: every frame as long as the first
    return Buffer.concat([count, ...frames.map((f) => Buffer.concat([f, Buffer.alloc(size)]).subarray(0, size))]);
  }
  const sizes = frames.slice(0, -1).map((f) => f.length);
  let head: Buffer;
  if (sizes.length === 0) {
    head = Buffer.alloc(0); // one frame: no sizes to write
  } else if (lacing === 0x02) {
    head = Buffer.from(sizes.flatMap((s) => [...Array<number>(Math.floor(s / 255)).fill(255), s % 255]));
  } else {
    // EBML: the first size as a VINT, then signed differences (RFC 9559 §10.3.3).
    const diffs = sizes.slice(1).map((s, i) => vint(BigInt(s - sizes[i]! + 8191), 2));
    head = Buffer.concat([vint(BigInt(sizes[0]!), 2), ...diffs]);
  }
  return Buffer.concat([count, head, ...frames]);
}

/** Track number VINT, int16 relative timestamp, flags, maybe laced frames (RFC 9559 §10.1). */
function blockBodyArb(limits: BlockLimits, flagsKey: boolean | null): fc.Arbitrary<{ body: Buffer; track: number; rel: number; key: boolean; frames: number }> {
  return fc
    .record({
      track: fc.integer({ min: 1, max: limits.tracks }),
      trackLength: fc.integer({ min: 1, max: 2 }),
      rel: limits.rel,
      key: fc.boolean(),
      otherFlags: fc.constantFrom(0, 0x01, 0x08, 0x09),
      lacing: fc.oneof({ arbitrary: fc.constant(0), weight: 3 }, { arbitrary: fc.constantFrom(0x02, 0x04, 0x06), weight: 1 }),
      frames: fc.array(frameArb, { minLength: 1, maxLength: 4 }),
    })
    .map(({ track, trackLength, rel, key, otherFlags, lacing, frames }) => {
      const head = Buffer.alloc(3);
      head.writeInt16BE(rel);
      head[2] = ((flagsKey ?? key) ? 0x80 : 0) | otherFlags | lacing;
      const data = lacing === 0 ? frames[0]! : laced(lacing, frames);
      const body = Buffer.concat([vint(BigInt(track), trackLength), head, data]);
      return { body, track, rel, key, frames: lacing === 0 ? 1 : frames.length };
    });
}

function simpleBlockArb(limits: BlockLimits): fc.Arbitrary<ChildModel> {
  return fc.tuple(blockBodyArb(limits, null), extraArb).map(([b, extra]) => ({
    id: ID.SimpleBlock,
    bytes: el(ID.SimpleBlock, b.body, extra),
    block: { track: b.track, rel: b.rel, key: b.key, frames: b.frames, duration: -1 },
  }));
}

/** No ID that the BlockGroup reader knows. */
const otherIdArb = plainIdArb.filter((id) => id !== ID.Block && id !== ID.ReferenceBlock && id !== ID.BlockDuration);

/** A BlockGroup: a keyframe when it has no ReferenceBlock; its children in any order. */
function blockGroupArb(limits: BlockLimits): fc.Arbitrary<ChildModel> {
  return fc
    .tuple(blockBodyArb(limits, false), fc.nat(2), fc.option(fc.nat(0xffff), { nil: undefined }), fc.array(fc.tuple(otherIdArb, frameArb), { maxLength: 2 }), fc.nat(), extraArb)
    .map(([b, references, duration, others, at, extra]): ChildModel => {
      const siblings = [
        ...Array.from({ length: references }, (_, i) => el(ID.ReferenceBlock, [0xfe - i])),
        ...(duration !== undefined ? [el(ID.BlockDuration, duration > 0xff ? [duration >> 8, duration & 0xff] : [duration])] : []),
        ...others.map(([id, data]) => el(id, data)),
      ];
      siblings.splice(at % (siblings.length + 1), 0, el(ID.Block, b.body));
      return {
        id: ID.BlockGroup,
        bytes: el(ID.BlockGroup, Buffer.concat(siblings), extra),
        block: { track: b.track, rel: b.rel, key: references === 0, frames: b.frames, duration: duration ?? -1 },
      };
    });
}

/** Children that are no block: dropped from pieces. */
const otherChildArb: fc.Arbitrary<ChildModel> = fc.oneof(
  fc.nat(0xffff).map((n): ChildModel => ({ id: ID.Position, bytes: el(ID.Position, [n >> 8, n & 0xff]) })),
  fc.nat(0xff).map((n): ChildModel => ({ id: ID.PrevSize, bytes: el(ID.PrevSize, [n]) })),
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b): ChildModel => ({ id: ID.CRC32, bytes: el(ID.CRC32, b) })),
  frameArb.map((b): ChildModel => ({ id: ID.Void, bytes: el(ID.Void, b) })),
  fc.tuple(otherIdArb.filter((id) => id !== ID.SimpleBlock && id !== ID.BlockGroup), frameArb).map(([id, b]): ChildModel => ({ id, bytes: el(id, b) })),
);

function childArb(limits: BlockLimits): fc.Arbitrary<ChildModel> {
  return fc.oneof({ arbitrary: simpleBlockArb(limits), weight: 6 }, { arbitrary: blockGroupArb(limits), weight: 2 }, { arbitrary: otherChildArb, weight: 1 });
}

interface ClusterModel {
  timestamp: number;
  children: ChildModel[];
}

/** One step of the ingest: a Cluster starts, or one of its children arrives; `flush`: the input chunk ends after it. */
type Step = { kind: 'start'; timestamp: number; flush: boolean } | { kind: 'child'; child: ChildModel; flush: boolean };

interface InputModel {
  rules: PassRules;
  clusters: ClusterModel[];
  steps: Step[];
}

// Small times and intervals too, so that blocks land exactly on a split interval's end.
const ANY_REL: BlockLimits = { tracks: 4, rel: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: -0x8000, max: 0x7fff })) };

const rulesArb: fc.Arbitrary<PassRules> = fc.record({
  videoTrack: fc.constantFrom(0, 1, 2),
  splitInterval: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 3000 })),
  frameTicks: fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 100 })), { maxLength: 3 }).map((pairs) => new Map(pairs)),
  ticksPerSecond: fc.constant(1000),
});

/**
 * Clusters of children, cut into arrival batches. `monotonic`: Cluster
 * Timestamps and block times only ever rise (the children in each Cluster
 * are sorted by their relative timestamps).
 */
function inputArb(limits: BlockLimits, timestampArb: fc.Arbitrary<number>, monotonic = false): fc.Arbitrary<InputModel> {
  const cluster = fc.record({ timestamp: timestampArb, children: fc.array(childArb(limits), { maxLength: 12 }) });
  return fc
    .record({ rules: rulesArb, clusters: fc.array(cluster, { minLength: 1, maxLength: 4 }), flushes: fc.array(fc.boolean(), { maxLength: 60 }) })
    .map(({ rules, clusters, flushes }) => {
      if (monotonic) clusters = monotonicClusters(clusters);
      const steps: Step[] = [];
      for (const c of clusters) {
        steps.push({ kind: 'start', timestamp: c.timestamp, flush: false });
        for (const child of c.children) steps.push({ kind: 'child', child, flush: false });
      }
      steps.forEach((step, i) => (step.flush = flushes[i] ?? false));
      return { rules, clusters, steps };
    });
}

/** Sorts blocks by relative time and makes each Cluster start at or after the last block of the one before. */
function monotonicClusters(clusters: ClusterModel[]): ClusterModel[] {
  let last = 0;
  return clusters.map((c) => {
    const blocks = c.children.filter((x) => x.block).sort((a, b) => a.block!.rel - b.block!.rel);
    let i = 0;
    const children = c.children.map((x) => (x.block ? blocks[i++]! : x));
    const timestamp = Math.max(c.timestamp, last);
    last = timestamp + (blocks.at(-1)?.block!.rel ?? 0);
    return { timestamp, children };
  });
}

// ---- running the forwarder -------------------------------------------------------------

/** Where each input block came from. */
interface Origin {
  bytes: Buffer;
  block: BlockModel;
  pass: number;
  batch: number;
  cluster: number;
  clusterTimestamp: number;
}

interface Outcome {
  pieces: Piece[];
  /** Every block given to the forwarder before the end or the error, in order. */
  origins: Origin[];
  error?: unknown;
  largestAllocation: number;
  /** Bytes of every child given. */
  inputBytes: number;
}

/** Runs `passes` passes of the input through one forwarder, as the ingest does for a looped file. */
function run(input: InputModel, passes = 1): Outcome {
  const forwarder = new BlockForwarder();
  const pieces: Piece[] = [];
  const origins: Origin[] = [];
  let error: unknown;
  let inputBytes = 0;
  const largest = largestAllocation(() => {
    let batch = 0;
    try {
      for (let pass = 0; pass < passes; pass++) {
        forwarder.beginPass(input.rules);
        let cluster = -1;
        let clusterTimestamp = 0;
        for (const step of input.steps) {
          if (step.kind === 'start') {
            cluster++;
            clusterTimestamp = step.timestamp;
            forwarder.clusterStart(step.timestamp);
          } else {
            const { child } = step;
            inputBytes += child.bytes.length;
            if (child.block) origins.push({ bytes: child.bytes, block: child.block, pass, batch, cluster, clusterTimestamp });
            forwarder.child(child.id, child.bytes, pieces);
          }
          if (step.flush) {
            forwarder.flush(pieces);
            batch++;
          }
        }
        // The next pass starts with an EBML header, which flushes (StreamIngest#onEvent).
        forwarder.flush(pieces);
        batch++;
      }
    } catch (err) {
      error = err;
    }
  });
  return { pieces, origins, largestAllocation: largest, inputBytes, ...(error !== undefined ? { error } : {}) };
}

// ---- reading pieces back: an EBML walk of this file's own ---------------------------------

interface ReadPiece {
  /** The value of its Timestamp, its first child. */
  timestamp: number;
  /** Its children after the Timestamp, as written. */
  blocks: Buffer[];
}

/** A known-size Cluster exactly as long as the piece, whose first child is its Timestamp. */
function readPiece(piece: Piece): ReadPiece {
  const b = Buffer.from(piece.bytes.buffer, piece.bytes.byteOffset, piece.bytes.byteLength);
  const id = readVint(b, 0, true);
  assert.equal(id.value, ID.Cluster, 'a Cluster');
  const size = readVint(b, id.length, false);
  assert.ok(!size.allOnes, 'a known size');
  let pos = id.length + size.length;
  assert.equal(pos + size.value, b.length, 'its size covers the piece exactly');
  const children: Array<{ id: number; data: number; end: number }> = [];
  while (pos < b.length) {
    const cid = readVint(b, pos, true);
    const csize = readVint(b, pos + cid.length, false);
    const data = pos + cid.length + csize.length;
    assert.ok(!csize.allOnes && data + csize.value <= b.length, `a child inside the piece at ${pos}`);
    children.push({ id: cid.value, data, end: data + csize.value });
    pos = data + csize.value;
  }
  const [first, ...rest] = children;
  assert.ok(first?.id === ID.Timestamp, 'the Timestamp first');
  assert.ok(first.end - first.data <= 8, 'a Timestamp of at most 8 bytes');
  let timestamp = 0;
  for (let i = first.data; i < first.end; i++) timestamp = timestamp * 256 + b[i]!;
  assert.ok(Number.isSafeInteger(timestamp), 'a Timestamp below 2^53');
  assert.ok(rest.every((c) => c.id !== ID.Timestamp), 'one Timestamp');
  const blocks = rest.map((c, i) => b.subarray(i === 0 ? first.end : rest[i - 1]!.end, c.end));
  return { timestamp, blocks };
}

/** Pieces as read, and the input block each of their blocks is, by position. */
function pieceBlocks(outcome: Outcome): Array<{ piece: Piece; read: ReadPiece; origins: Origin[] }> {
  let k = 0;
  return outcome.pieces.map((piece) => {
    const read = readPiece(piece);
    const origins = outcome.origins.slice(k, k + read.blocks.length);
    k += read.blocks.length;
    return { piece, read, origins };
  });
}

/**
 * The pieces of a valid input: every block once, in order, byte for byte;
 * each piece from one batch and one Cluster Timestamp, at the time of its first block,
 * flagged a start point exactly when its first video block is a keyframe (or
 * the stream has no video), with no video keyframe after that; cut only for
 * a reason (a new batch, Cluster Timestamp or pass, a video keyframe after video, the
 * split interval).
 */
function assertPieces(input: InputModel, outcome: Outcome): void {
  const { videoTrack, splitInterval } = input.rules;
  const got = outcome.pieces.flatMap((p) => readPiece(p).blocks);
  assert.deepEqual(got, outcome.origins.map((o) => o.bytes), 'the input blocks, in order, nothing lost or repeated');
  const offsets = new Map<number, number>();
  let previous: { origins: Origin[]; start: number; hasVideo: boolean } | undefined;
  for (const [p, { piece, read, origins }] of pieceBlocks(outcome).entries()) {
    const at = `piece ${p}`;
    assert.ok(origins.length > 0, `${at}: no empty piece`);
    const first = origins[0]!;
    // Blocks of two Clusters with one Timestamp may share a piece: their relative times still hold.
    const together = (o: Origin): boolean => o.batch === first.batch && o.clusterTimestamp === first.clusterTimestamp && o.pass === first.pass;
    assert.ok(origins.every(together), `${at}: one batch, one Cluster Timestamp`);
    // One offset per pass, 0 in the first: the stream starts where its input does.
    const offset = read.timestamp - first.clusterTimestamp;
    assert.equal(offsets.get(first.pass) ?? (first.pass === 0 ? 0 : offset), offset, `${at}: the pass's offset`);
    offsets.set(first.pass, offset);
    const times = origins.map((o) => o.clusterTimestamp + o.block.rel + offset);
    assert.equal(piece.timestamp, times[0], `${at}: its first block's time`);
    for (const [i, o] of origins.entries()) {
      const known = o.block.duration >= 0 ? o.block.duration : (input.rules.frameTicks.get(o.block.track) ?? 0) * o.block.frames;
      assert.ok(piece.end >= times[i]! + known, `${at}: ends at ${piece.end}, before block ${i} does`);
    }
    const video = origins.filter((o) => videoTrack !== 0 && o.block.track === videoTrack);
    assert.equal(piece.keyframe, videoTrack === 0 || video[0]?.block.key === true, `${at}: keyframe flag`);
    assert.ok(video.slice(1).every((o) => !o.block.key), `${at}: a video keyframe after its first video block`);
    if (splitInterval > 0) assert.ok(times.every((t) => t - times[0]! < splitInterval), `${at}: spans the split interval`);
    if (previous) {
      const last = previous.origins.at(-1)!;
      const isVideo = videoTrack !== 0 && first.block.track === videoTrack;
      const reason =
        first.batch !== last.batch ||
        first.clusterTimestamp !== last.clusterTimestamp ||
        first.pass !== last.pass ||
        (isVideo && first.block.key && previous.hasVideo) ||
        (splitInterval > 0 && times[0]! - previous.start >= splitInterval);
      assert.ok(reason, `${at}: cut from the piece before for no reason`);
    }
    previous = { origins, start: times[0]!, hasVideo: video.length > 0 };
  }
}

/** Only CorruptStreamError; what was built before it is well formed; nothing allocated beyond the bytes given. */
function assertSafe(outcome: Outcome): void {
  if (outcome.error !== undefined) assert.ok(isTypedError(outcome.error, [CorruptStreamError]), `untyped error: ${String(outcome.error)}`);
  for (const piece of outcome.pieces) readPiece(piece);
  const bound = outcome.inputBytes + PIECE_OVERHEAD;
  assert.ok(outcome.largestAllocation <= bound, `allocated ${outcome.largestAllocation} bytes for ${outcome.inputBytes} bytes of children`);
}

// ---- properties ------------------------------------------------------------------------------

const timestampArb = fc.oneof(fc.integer({ min: 0x8000, max: 100_000 }), fc.integer({ min: 0x8000, max: 2 ** 45 }));

test('valid blocks in random batches: pieces carry every block once, in order, cut at video keyframes, batches and Clusters', (t) => {
  checkProperty(
    t,
    fc.property(inputArb(ANY_REL, timestampArb), (input) => {
      const outcome = run(input);
      assert.equal(outcome.error, undefined, String(outcome.error));
      assertSafe(outcome);
      assertPieces(input, outcome);
    }),
    300,
  );
});

test('monotonic input, looped: piece times never fall within a pass, nor a track\'s block times across passes', (t) => {
  const forward: BlockLimits = { tracks: 3, rel: fc.oneof(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 3000 })) };
  checkProperty(
    t,
    fc.property(inputArb(forward, fc.nat(100_000), true), fc.integer({ min: 1, max: 3 }), (input, passes) => {
      const outcome = run(input, passes);
      assert.equal(outcome.error, undefined, String(outcome.error));
      assertPieces(input, outcome);
      const ends = new Map<number, number>();
      let last: { pass: number; time: number; timestamp: number } | undefined;
      for (const { piece, read, origins } of pieceBlocks(outcome)) {
        const pass = origins[0]!.pass;
        if (last?.pass === pass) {
          assert.ok(piece.timestamp >= last.time, `a piece at ${piece.timestamp} after one at ${last.time}`);
          assert.ok(read.timestamp >= last.timestamp, `Cluster Timestamp ${read.timestamp} after ${last.timestamp}`);
        }
        last = { pass, time: piece.timestamp, timestamp: read.timestamp };
        for (const o of origins) {
          const time = read.timestamp + o.block.rel;
          const before = ends.get(o.block.track) ?? -Infinity;
          assert.ok(time >= before, `track ${o.block.track}: a block at ${time} after one at ${before} (pass ${pass})`);
          ends.set(o.block.track, time);
        }
      }
    }),
    200,
  );
});

test('mutated or truncated blocks: CorruptStreamError or well-formed pieces of the blocks given, in order', (t) => {
  const damageArb = fc.array(
    fc.tuple(fc.nat(), fc.oneof(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), fc.nat().map((cut) => ({ cut })))),
    { minLength: 1, maxLength: 3 },
  );
  checkProperty(
    t,
    fc.property(inputArb(ANY_REL, timestampArb), damageArb, (input, damages) => {
      const steps = input.steps.map((s) => ({ ...s })); // the generated value stays as it was, for shrinking
      const children = steps.filter((s) => s.kind === 'child');
      if (children.length === 0) return;
      for (const [at, damage] of damages) {
        const step = children[at % children.length]!;
        const bytes = step.child.bytes;
        // The ID stays what the scanner read; only the bytes are damaged.
        const damaged = Array.isArray(damage) ? mutate(bytes, damage) : bytes.subarray(0, damage.cut % bytes.length);
        step.child = { id: step.child.id, bytes: damaged };
      }
      const outcome = run({ ...input, steps });
      assertSafe(outcome);
      // Pieces hold blocks given, in order; none invented (damaged ones are known only by their bytes).
      const given = steps.flatMap((s) => (s.kind === 'child' && (s.child.id === ID.SimpleBlock || s.child.id === ID.BlockGroup) ? [s.child.bytes] : []));
      const got = outcome.pieces.flatMap((p) => readPiece(p).blocks);
      let k = 0;
      for (const block of got) {
        while (k < given.length && !given[k]!.equals(block)) k++;
        assert.ok(k < given.length, 'a block in a piece that was not given, or out of order');
        k++;
      }
    }),
    300,
  );
});

test('any bytes as a SimpleBlock or BlockGroup: CorruptStreamError or well-formed pieces', (t) => {
  const garbageArb = fc.tuple(fc.constantFrom(ID.SimpleBlock, ID.BlockGroup), fc.uint8Array({ maxLength: 40 }), fc.boolean());
  checkProperty(
    t,
    fc.property(rulesArb, timestampArb, fc.array(garbageArb, { minLength: 1, maxLength: 8 }), (rules, timestamp, garbage) => {
      const steps: Step[] = [{ kind: 'start', timestamp, flush: false }];
      for (const [id, body, framed] of garbage) {
        // Framed: the element's own ID and size are right, its body is noise.
        const bytes = framed ? el(id, body) : Buffer.from(body);
        steps.push({ kind: 'child', child: { id, bytes }, flush: false });
      }
      assertSafe(run({ rules, clusters: [], steps }));
    }),
    200,
  );
});

test('Cluster Timestamps near 2^53: CorruptStreamError, never a bad number in a piece', (t) => {
  const nearLimitArb = fc.integer({ min: Number.MAX_SAFE_INTEGER - 0x10000, max: Number.MAX_SAFE_INTEGER });
  checkProperty(
    t,
    fc.property(inputArb(ANY_REL, nearLimitArb), fc.integer({ min: 1, max: 2 }), (input, passes) => {
      const outcome = run(input, passes);
      assertSafe(outcome); // readPiece checks every Timestamp is below 2^53
      for (const piece of outcome.pieces) assert.ok(Number.isSafeInteger(piece.timestamp) && Number.isSafeInteger(piece.end));
    }),
    200,
  );
});
