import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Piscina } from 'piscina';
import { CorruptStreamError } from '@mkvcast/shared';
import { processCluster, type ClusterJob, type ClusterPiece } from '../src/cluster.js';

// Track 1 is video, track 2 audio, unless a test says otherwise.
const VIDEO = 1;

function job(bytes: Uint8Array, over: Partial<ClusterJob> = {}): ClusterJob {
  return { bytes, videoTrack: VIDEO, timestampOffset: 0, splitInterval: 0, ...over };
}

// ------------------------------------------------------------------ an independent reader
// Deliberately not the code under test (nor shared/vint.ts): a plain EBML walk.

interface Vint {
  value: number;
  length: number;
  allOnes: boolean;
}

function vint(buf: Uint8Array, pos: number, keepMarker: boolean): Vint {
  const first = buf[pos]!;
  let length = 1;
  while (length <= 8 && (first & (0x100 >> length)) === 0) length++;
  assert.ok(length <= 8, `bad VINT at ${pos}`);
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = (first & (0xff >> length)) === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + buf[pos + i]!;
    if (buf[pos + i] !== 0xff) allOnes = false;
  }
  return { value, length, allOnes };
}

interface ParsedBlock {
  track: number;
  /** Absolute: Cluster Timestamp + int16 relative timestamp. */
  timestamp: number;
  keyframe: boolean;
  /** The whole SimpleBlock/BlockGroup element in hex with its two timestamp bytes blanked. */
  payload: string;
}

interface ParsedCluster {
  knownSize: boolean;
  timestamp: number;
  /** IDs of the children in order, Timestamp included. */
  childIds: number[];
  blocks: ParsedBlock[];
}

function parseBlock(buf: Uint8Array, elemStart: number, elemEnd: number, blockData: number, clusterTs: number, keyframe: boolean | null): ParsedBlock {
  const track = vint(buf, blockData, false);
  const tsPos = blockData + track.length;
  const rel = Buffer.from(buf.buffer, buf.byteOffset).readInt16BE(tsPos);
  const copy = Buffer.from(buf.subarray(elemStart, elemEnd));
  copy[tsPos - elemStart] = 0;
  copy[tsPos - elemStart + 1] = 0;
  return {
    track: track.value,
    timestamp: clusterTs + rel,
    keyframe: keyframe ?? (buf[tsPos + 2]! & 0x80) !== 0,
    payload: copy.toString('hex'),
  };
}

function parseCluster(buf: Uint8Array): ParsedCluster {
  const id = vint(buf, 0, true);
  assert.equal(id.value, 0x1f43b675, 'Cluster ID');
  const size = vint(buf, id.length, false);
  let pos = id.length + size.length;
  const end = size.allOnes ? buf.length : pos + size.value;
  assert.equal(end, buf.length, 'Cluster size matches its bytes');
  // Children first, blocks second: a block's absolute time needs the Timestamp.
  const children: { id: number; start: number; data: number; end: number }[] = [];
  while (pos < end) {
    const cid = vint(buf, pos, true);
    const csize = vint(buf, pos + cid.length, false);
    const data = pos + cid.length + csize.length;
    children.push({ id: cid.value, start: pos, data, end: data + csize.value });
    pos = data + csize.value;
  }
  assert.equal(pos, end, 'children fill the Cluster exactly');
  const tsChild = children.find((c) => c.id === 0xe7);
  assert.ok(tsChild, 'Cluster has a Timestamp');
  let timestamp = 0;
  for (let i = tsChild.data; i < tsChild.end; i++) timestamp = timestamp * 256 + buf[i]!;
  const blocks: ParsedBlock[] = [];
  for (const c of children) {
    if (c.id === 0xa3) blocks.push(parseBlock(buf, c.start, c.end, c.data, timestamp, null));
    if (c.id !== 0xa0) continue;
    let blockData = -1;
    let references = false;
    for (let p = c.data; p < c.end; ) {
      const gid = vint(buf, p, true);
      const gsize = vint(buf, p + gid.length, false);
      if (gid.value === 0xa1) blockData = p + gid.length + gsize.length;
      if (gid.value === 0xfb) references = true;
      p += gid.length + gsize.length + gsize.value;
    }
    blocks.push(parseBlock(buf, c.start, c.end, blockData, timestamp, !references));
  }
  return { knownSize: !size.allOnes, timestamp, childIds: children.map((c) => c.id), blocks };
}

/** Every piece is a known-size Cluster opening with an 8-byte Timestamp that matches `timestamp`. */
function assertPieceShape(piece: ClusterPiece): ParsedCluster {
  const b = piece.bytes;
  assert.deepEqual([...b.subarray(0, 5)], [0x1f, 0x43, 0xb6, 0x75, 0x01], 'Cluster ID, 8-byte size VINT');
  const parsed = parseCluster(b);
  assert.ok(parsed.knownSize);
  assert.deepEqual([...b.subarray(12, 14)], [0xe7, 0x88], 'Timestamp first, 8 bytes');
  assert.equal(parsed.childIds[0], 0xe7);
  assert.equal(parsed.timestamp, piece.timestamp);
  const last = parsed.blocks.length === 0 ? piece.timestamp : Math.max(...parsed.blocks.map((x) => x.timestamp));
  assert.equal(piece.lastTimestamp, last, 'lastTimestamp');
  return parsed;
}

/** The pieces' blocks, concatenated, are the input's blocks in order at the same times (+ offset). */
function assertRoundTrip(input: Uint8Array, pieces: ClusterPiece[], offset = 0): ParsedCluster[] {
  const parsed = pieces.map(assertPieceShape);
  const expected = parseCluster(input).blocks.map((x) => ({ ...x, timestamp: x.timestamp + offset }));
  assert.deepEqual(parsed.flatMap((p) => p.blocks), expected);
  return parsed;
}

function run(bytes: Uint8Array, over: Partial<ClusterJob> = {}): { pieces: ClusterPiece[]; parsed: ParsedCluster[] } {
  const before = Buffer.from(bytes);
  const pieces = processCluster(job(bytes, over));
  assert.deepEqual(Buffer.from(bytes), before, 'input left unchanged');
  return { pieces, parsed: assertRoundTrip(bytes, pieces, over.timestampOffset ?? 0) };
}

const rels = (p: ParsedCluster): number[] => p.blocks.map((x) => x.timestamp - p.timestamp);

// ------------------------------------------------------------------ fixtures

/** Timestamp 1000; a video keyframe in the middle of the Cluster (ffmpeg's pipe muxing). */
const MID_GOP = Uint8Array.from([
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0xb5,                   // size 53
  0xe7, 0x82, 0x03, 0xe8, // Timestamp, size 2, 1000
  0xa3, 0x85,             // SimpleBlock, size 5
  0x81, 0x00, 0x00, 0x80, //   track 1, rel 0, flags: keyframe
  0x11,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x82, 0x00, 0x0a, 0x80, //   track 2, rel 10, keyframe
  0x21,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x81, 0x00, 0x21, 0x00, //   track 1, rel 33, not a keyframe
  0x12,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x82, 0x00, 0x28, 0x80, //   track 2, rel 40, keyframe
  0x22,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x81, 0x00, 0x42, 0x80, //   track 1, rel 66, keyframe  <- split here
  0x13,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x82, 0x00, 0x46, 0x80, //   track 2, rel 70, keyframe
  0x23,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x81, 0x00, 0x64, 0x00, //   track 1, rel 100, not a keyframe
  0x14,                   //   frame
]);

/** Timestamp 0; audio before the GOP's first (key) video frame. */
const AUDIO_FIRST = Uint8Array.from([
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0x9f,                   // size 31
  0xe7, 0x81, 0x00,       // Timestamp, size 1, 0
  0xa3, 0x85,             // SimpleBlock, size 5
  0x82, 0x00, 0x00, 0x80, //   track 2, rel 0, keyframe
  0x21,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x82, 0x00, 0x0a, 0x80, //   track 2, rel 10, keyframe
  0x22,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x81, 0x00, 0x14, 0x80, //   track 1, rel 20, keyframe (first video block)
  0x11,                   //   frame
  0xa3, 0x85,             // SimpleBlock, size 5
  0x82, 0x00, 0x1e, 0x80, //   track 2, rel 30, keyframe
  0x23,                   //   frame
]);

/** Timestamp 500; three BlockGroups: referencing, key (no ReferenceBlock), referencing. */
const BLOCK_GROUPS = Uint8Array.from([
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0xa8,                   // size 40
  0xe7, 0x82, 0x01, 0xf4, // Timestamp, size 2, 500
  0xa0, 0x8a,             // BlockGroup, size 10
  0xa1, 0x85,             //   Block, size 5
  0x81, 0x00, 0x00, 0x00, //     track 1, rel 0, flags 0
  0x31,                   //     frame
  0xfb, 0x81, 0xfe,       //   ReferenceBlock, size 1, -2: not a keyframe
  0xa0, 0x8a,             // BlockGroup, size 10
  0xa1, 0x85,             //   Block, size 5
  0x81, 0x00, 0x28, 0x00, //     track 1, rel 40, flags 0
  0x32,                   //     frame
  0x9b, 0x81, 0x28,       //   BlockDuration, size 1, 40 (no ReferenceBlock: keyframe)
  0xa0, 0x8a,             // BlockGroup, size 10
  0xfb, 0x81, 0xd8,       //   ReferenceBlock, size 1, -40 (before its Block)
  0xa1, 0x85,             //   Block, size 5
  0x81, 0x00, 0x50, 0x00, //     track 1, rel 80, flags 0
  0x33,                   //     frame
]);

/** Timestamp 10; children that must go (Position, PrevSize, CRC-32, Void) among ones that stay. */
const WITH_DROPPED = Uint8Array.from([
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0xaa,                   // size 42
  0xe7, 0x81, 0x0a,       // Timestamp, size 1, 10
  0xa7, 0x81, 0x00,       // Position, size 1, 0            (dropped)
  0xab, 0x81, 0x40,       // PrevSize, size 1, 64           (dropped)
  0xbf, 0x84,             // CRC-32, size 4                 (dropped)
  0xde, 0xad, 0xbe, 0xef, //   checksum
  0x58, 0x54, 0x84,       // SilentTracks, size 4           (kept)
  0x58, 0xd7, 0x81, 0x02, //   SilentTrackNumber, size 1, 2
  0xec, 0x82, 0x00, 0x00, // Void, size 2                   (dropped)
  0xa3, 0x85,             // SimpleBlock, size 5            (kept)
  0x81, 0x00, 0x00, 0x80, //   track 1, rel 0, keyframe
  0x11,                   //   frame
  0x7e, 0x7e, 0x81, 0x99, // unknown ID 0x7E7E, size 1, 0x99 (kept)
  0xaf, 0x83,             // EncryptedBlock, size 3         (kept)
  0x01, 0x02, 0x03,       //   opaque
]);

/** Audio only (track 1), Timestamp 0, a frame every 400 ticks and one 300 after the last. */
const AUDIO_ONLY = Uint8Array.from([
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0xb4,                   // size 52
  0xe7, 0x81, 0x00,       // Timestamp, size 1, 0
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x00, 0x00, 0x80, 0x01, //   rel 0, keyframe, frame
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x01, 0x90, 0x80, 0x02, //   rel 400, keyframe, frame
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x03, 0x20, 0x80, 0x03, //   rel 800, keyframe, frame
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x04, 0xb0, 0x80, 0x04, //   rel 1200, keyframe, frame  <- >= 0 + 1000
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x06, 0x40, 0x80, 0x05, //   rel 1600, keyframe, frame
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x07, 0xd0, 0x80, 0x06, //   rel 2000, keyframe, frame
  0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
  0x08, 0xfc, 0x80, 0x07, //   rel 2300, keyframe, frame  <- >= 1200 + 1000
]);

/** Timestamp 100000; a keyframe at `key` then an audio frame at `late` (int16 bytes, big-endian). */
function overflowCluster(key: [number, number], late: [number, number]): Uint8Array {
  return Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x9a,                   // size 26
    0xe7, 0x83,             // Timestamp, size 3
    0x01, 0x86, 0xa0,       //   100000
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    0x00, 0x00, 0x80, 0x11, //   rel 0, keyframe, frame
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    ...key, 0x80, 0x12,     //   rel `key`, keyframe, frame  <- split candidate
    0xa3, 0x85, 0x82,       // SimpleBlock, size 5, track 2
    ...late, 0x80, 0x21,    //   rel `late`, keyframe, frame
  ]);
}

// ------------------------------------------------------------------ tests

test('SimpleBlock keyframe flag: a Cluster opening mid-GOP is not a start point', () => {
  const midGop = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x91,                   // size 17
    0xe7, 0x81, 0x07,       // Timestamp, size 1, 7
    0xa3, 0x85,             // SimpleBlock, size 5
    0x81, 0x00, 0x00, 0x00, //   track 1, rel 0, flags 0x00: not a keyframe
    0x11,                   //   frame
    0xa3, 0x85,             // SimpleBlock, size 5
    0x81, 0x00, 0x05, 0x80, //   track 1, rel 5, flags 0x80: keyframe
    0x12,                   //   frame
  ]);
  const { pieces, parsed } = run(midGop);
  assert.deepEqual(pieces.map((p) => [p.timestamp, p.keyframe]), [[7, false], [12, true]]);
  assert.deepEqual(parsed.map((p) => p.blocks.map((b) => b.keyframe)), [[false], [true]]);
});

test('a mid-Cluster video keyframe starts a second piece with rebased block timestamps', () => {
  const { pieces, parsed } = run(MID_GOP);
  assert.equal(pieces.length, 2);
  assert.deepEqual(pieces.map((p) => p.timestamp), [1000, 1066]);
  assert.deepEqual(pieces.map((p) => p.keyframe), [true, true]);
  assert.deepEqual(pieces.map((p) => p.lastTimestamp), [1040, 1100]);
  assert.deepEqual(rels(parsed[0]!), [0, 10, 33, 40]);
  assert.deepEqual(rels(parsed[1]!), [0, 4, 34]);
  // The second piece byte for byte.
  assert.deepEqual(Buffer.from(pieces[1]!.bytes).toString('hex'), Buffer.from([
    0x1f, 0x43, 0xb6, 0x75,                         // Cluster ID
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f, // size 31, 8-byte VINT
    0xe7, 0x88,                                     // Timestamp, size 8
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x2a, //   1066
    0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x13,       // video key, rel 66 -> 0
    0xa3, 0x85, 0x82, 0x00, 0x04, 0x80, 0x23,       // audio, rel 70 -> 4
    0xa3, 0x85, 0x81, 0x00, 0x22, 0x00, 0x14,       // video, rel 100 -> 34
  ]).toString('hex'));
});

test('with video, splitInterval also cuts long pieces; only pieces opening on a keyframe are start points', () => {
  // MID_GOP blocks at rel 0 (V key), 10 (A), 33 (V), 40 (A), 66 (V key), 70 (A), 100 (V).
  const { pieces, parsed } = run(MID_GOP, { splitInterval: 30 });
  // 30 ticks: cut before rel 33 (time), 66 (keyframe, and time), 100 (time).
  assert.deepEqual(pieces.map((p) => p.timestamp), [1000, 1033, 1066, 1100]);
  assert.deepEqual(pieces.map((p) => p.keyframe), [true, false, true, false]);
  assert.deepEqual(parsed.map(rels), [[0, 10], [0, 7], [0, 4], [0]]);
});

test('audio before the first video keyframe needs no split', () => {
  const { pieces, parsed } = run(AUDIO_FIRST);
  assert.equal(pieces.length, 1);
  assert.equal(pieces[0]!.keyframe, true);
  assert.equal(pieces[0]!.timestamp, 0);
  assert.equal(pieces[0]!.lastTimestamp, 30);
  assert.deepEqual(rels(parsed[0]!), [0, 10, 20, 30]);
});

test('BlockGroup: keyframe without ReferenceBlock, not one with it; splits and rebases inside the Block', () => {
  const { pieces, parsed } = run(BLOCK_GROUPS);
  assert.deepEqual(pieces.map((p) => [p.timestamp, p.keyframe, p.lastTimestamp]), [
    [500, false, 500],
    [540, true, 580],
  ]);
  assert.deepEqual(parsed[1]!.blocks.map((b) => b.keyframe), [true, false]);
  assert.deepEqual(rels(parsed[1]!), [0, 40]);
  assert.deepEqual(Buffer.from(pieces[1]!.bytes.subarray(22)).toString('hex'), Buffer.from([
    0xa0, 0x8a, 0xa1, 0x85, 0x81, 0x00, 0x00, 0x00, 0x32, 0x9b, 0x81, 0x28, // rel 40 -> 0
    0xa0, 0x8a, 0xfb, 0x81, 0xd8, 0xa1, 0x85, 0x81, 0x00, 0x28, 0x00, 0x33, // rel 80 -> 40
  ]).toString('hex'));
});

test('a lone BlockGroup without ReferenceBlock is a start point', () => {
  const lone = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x8c,                   // size 12
    0xe7, 0x81, 0x00,       // Timestamp, size 1, 0
    0xa0, 0x87,             // BlockGroup, size 7
    0xa1, 0x85,             //   Block, size 5
    0x81, 0x00, 0x00, 0x00, //     track 1, rel 0, flags 0
    0x31,                   //     frame
  ]);
  assert.equal(run(lone).pieces[0]!.keyframe, true);
});

test('unknown-size Cluster input comes out with a known size', () => {
  for (const size of [[0xff], [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]]) {
    const input = Uint8Array.from([
      0x1f, 0x43, 0xb6, 0x75, // Cluster ID
      ...size,                // unknown size, 1 or 8 bytes
      0xe7, 0x81, 0x05,       // Timestamp, size 1, 5
      0xa3, 0x85,             // SimpleBlock, size 5
      0x81, 0x00, 0x00, 0x80, //   track 1, rel 0, keyframe
      0x11,                   //   frame
      0xa3, 0x85,             // SimpleBlock, size 5
      0x82, 0x00, 0x02, 0x80, //   track 2, rel 2, keyframe
      0x21,                   //   frame
    ]);
    const { pieces } = run(input);
    assert.equal(pieces.length, 1);
    assert.equal(pieces[0]!.bytes.length, 4 + 8 + 10 + 14);
    assert.equal(Buffer.from(pieces[0]!.bytes).readUInt32BE(8), 10 + 14, 'declared size');
    assert.equal(pieces[0]!.timestamp, 5);
  }
});

test('Position, PrevSize, CRC-32 and Void are dropped; everything else is kept byte for byte', () => {
  const { pieces, parsed } = run(WITH_DROPPED, { videoTrack: 0 });
  assert.equal(pieces.length, 1);
  assert.deepEqual(parsed[0]!.childIds, [0xe7, 0x5854, 0xa3, 0x7e7e, 0xaf]);
  assert.deepEqual(Buffer.from(pieces[0]!.bytes).toString('hex'), Buffer.from([
    0x1f, 0x43, 0xb6, 0x75,                         // Cluster ID
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, // size 33
    0xe7, 0x88,                                     // Timestamp, size 8
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, //   10
    0x58, 0x54, 0x84, 0x58, 0xd7, 0x81, 0x02,       // SilentTracks
    0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x11,       // SimpleBlock
    0x7e, 0x7e, 0x81, 0x99,                         // unknown element
    0xaf, 0x83, 0x01, 0x02, 0x03,                   // EncryptedBlock
  ]).toString('hex'));
});

test('timestampOffset is added to every Cluster Timestamp, block offsets untouched', () => {
  const { pieces, parsed } = run(MID_GOP, { timestampOffset: 90_000 });
  assert.deepEqual(pieces.map((p) => [p.timestamp, p.lastTimestamp]), [[91_000, 91_040], [91_066, 91_100]]);
  assert.deepEqual(parsed.map(rels), [[0, 10, 33, 40], [0, 4, 34]]);
});

test('large timestamps: an 8-byte Timestamp of 20541 s at 1 ms ticks', () => {
  const input = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75,                         // Cluster ID
    0x98,                                           // size 24
    0xe7, 0x88,                                     // Timestamp, size 8
    0x00, 0x00, 0x00, 0x00, 0x01, 0x39, 0x6e, 0x48, //   20541000
    0xa3, 0x85, 0x81, 0x00, 0x00, 0x00, 0x11,       // SimpleBlock: track 1, rel 0, not key
    0xa3, 0x85, 0x81, 0x00, 0x28, 0x80, 0x12,       // SimpleBlock: track 1, rel 40, key
  ]);
  const { pieces } = run(input, { timestampOffset: 3_600_000 });
  assert.deepEqual(pieces.map((p) => p.timestamp), [24_141_000, 24_141_040]);
});

test('audio only: a new piece every splitInterval ticks from the piece start', () => {
  const { pieces, parsed } = run(AUDIO_ONLY, { videoTrack: 0, splitInterval: 1000 });
  assert.deepEqual(pieces.map((p) => [p.timestamp, p.keyframe, p.lastTimestamp]), [
    [0, true, 800],
    [1200, true, 2000],
    [2300, true, 2300],
  ]);
  assert.deepEqual(parsed.map(rels), [[0, 400, 800], [0, 400, 800], [0]]);
  // 0 means never.
  assert.equal(run(AUDIO_ONLY, { videoTrack: 0, splitInterval: 0 }).pieces.length, 1);
});

test('a split whose blocks would not fit an int16 is not made', () => {
  const cases: [string, [number, number], [number, number], number[], number[][]][] = [
    // key +20000, late -10000: rebased to -30000, fits.
    ['fits below', [0x4e, 0x20], [0xd8, 0xf0], [100_000, 120_000], [[0], [0, -30_000]]],
    // key +20000, late -20000: rebased to -40000, does not fit.
    ['too far below', [0x4e, 0x20], [0xb1, 0xe0], [100_000], [[0, 20_000, -20_000]]],
    // key -20000, late +10000: rebased to +30000, fits.
    ['fits above', [0xb1, 0xe0], [0x27, 0x10], [100_000, 80_000], [[0], [0, 30_000]]],
    // key -20000, late +20000: rebased to +40000, does not fit.
    ['too far above', [0xb1, 0xe0], [0x4e, 0x20], [100_000], [[0, -20_000, 20_000]]],
  ];
  for (const [name, key, late, timestamps, relatives] of cases) {
    const { pieces, parsed } = run(overflowCluster(key, late));
    assert.deepEqual(pieces.map((p) => p.timestamp), timestamps, name);
    assert.deepEqual(parsed.map(rels), relatives, name);
  }
});

test('a refused later split leaves an earlier one in place', () => {
  const input = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0xa1,                   // size 33
    0xe7, 0x83,             // Timestamp, size 3
    0x01, 0x86, 0xa0,       //   100000
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    0x00, 0x00, 0x80, 0x11, //   rel 0, keyframe
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    0x4e, 0x20, 0x80, 0x12, //   rel 20000, keyframe: split (rest fits within -30000..10000)
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    0x75, 0x30, 0x80, 0x13, //   rel 30000, keyframe: refused (-10000 - 30000 < -32768)
    0xa3, 0x85, 0x82,       // SimpleBlock, size 5, track 2
    0xd8, 0xf0, 0x80, 0x21, //   rel -10000, keyframe
  ]);
  const { pieces, parsed } = run(input);
  assert.deepEqual(pieces.map((p) => p.timestamp), [100_000, 120_000]);
  assert.deepEqual(parsed.map(rels), [[0], [0, 10_000, -30_000]]);
});

test('no split onto a negative Cluster Timestamp', () => {
  const input = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x91,                   // size 17
    0xe7, 0x81, 0x05,       // Timestamp, size 1, 5
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    0x00, 0x00, 0x00, 0x11, //   rel 0, not key
    0xa3, 0x85, 0x81,       // SimpleBlock, size 5, track 1
    0xff, 0xf6, 0x80, 0x12, //   rel -10 (absolute -5), keyframe
  ]);
  const { pieces } = run(input);
  assert.deepEqual(pieces.map((p) => [p.timestamp, p.keyframe, p.lastTimestamp]), [[5, false, 5]]);
});

test('a Cluster with only a Timestamp gives one empty piece', () => {
  const input = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x83,                   // size 3
    0xe7, 0x81, 0x09,       // Timestamp, size 1, 9
  ]);
  const { pieces } = run(input);
  assert.deepEqual(pieces.map((p) => [p.timestamp, p.keyframe, p.lastTimestamp, p.bytes.length]), [[9, false, 9, 22]]);
  assert.equal(run(input, { videoTrack: 0 }).pieces[0]!.keyframe, true);
});

test('corrupt input throws CorruptStreamError', () => {
  const cluster = (...body: number[]): Uint8Array => Uint8Array.from([0x1f, 0x43, 0xb6, 0x75, 0xff, ...body]);
  const cases: [string, Uint8Array][] = [
    ['empty input', Uint8Array.from([])],
    ['not a Cluster', Uint8Array.from([0x1a, 0x45, 0xdf, 0xa3, 0x80])], // EBML header ID, size 0
    ['truncated Cluster size', Uint8Array.from([0x1f, 0x43, 0xb6, 0x75, 0x40])], // 2-byte size, 1 byte
    ['declared size past the end', Uint8Array.from([0x1f, 0x43, 0xb6, 0x75, 0x85, 0xe7, 0x81, 0x00])], // size 5, 3 given
    ['declared size short of the end', Uint8Array.from([0x1f, 0x43, 0xb6, 0x75, 0x82, 0xe7, 0x81, 0x00])], // size 2, 3 given
    ['no Timestamp', cluster(0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x11)], // SimpleBlock only
    ['two Timestamps', cluster(0xe7, 0x81, 0x00, 0xe7, 0x81, 0x01)],
    ['Timestamp of 9 bytes', cluster(0xe7, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 1)],
    ['child runs past the end', cluster(0xe7, 0x81, 0x00, 0xa3, 0x89, 0x81, 0x00, 0x00, 0x80)], // size 9, 4 left
    ['child header cut after its ID', cluster(0xe7, 0x81, 0x00, 0xa3)],
    ['invalid ID (0x00)', cluster(0xe7, 0x81, 0x00, 0x00, 0x81, 0x00)],
    ['invalid size VINT (0x00)', cluster(0xe7, 0x00)],
    ['child of unknown size', cluster(0xe7, 0x81, 0x00, 0xa3, 0xff, 0x81, 0x00, 0x00, 0x80)],
    ['block shorter than its header', cluster(0xe7, 0x81, 0x00, 0xa3, 0x83, 0x81, 0x00, 0x00)], // no flags
    ['empty block', cluster(0xe7, 0x81, 0x00, 0xa3, 0x80)],
    ['block with an invalid track VINT', cluster(0xe7, 0x81, 0x00, 0xa3, 0x84, 0x00, 0x00, 0x00, 0x80)],
    ['BlockGroup without Block', cluster(0xe7, 0x81, 0x00, 0xa0, 0x83, 0xfb, 0x81, 0xfe)],
    ['BlockGroup child past its end', cluster(0xe7, 0x81, 0x00, 0xa0, 0x83, 0xa1, 0x85, 0x81)],
    ['BlockGroup child of unknown size', cluster(0xe7, 0x81, 0x00, 0xa0, 0x83, 0xa1, 0xff, 0x81)],
    ['a Cluster inside the Cluster', cluster(0xe7, 0x81, 0x00, 0x1f, 0x43, 0xb6, 0x75, 0x80)],
  ];
  for (const [name, bytes] of cases) {
    assert.throws(
      () => processCluster(job(bytes)),
      (err: unknown) => err instanceof CorruptStreamError && err.code === 'MKV_ERR_CORRUPT_STREAM',
      name,
    );
  }
});

test('a split that would carry the Cluster Timestamp past 2^53 is a CorruptStreamError, not a RangeError', () => {
  const input = Uint8Array.from([
    0x1f, 0x43, 0xb6, 0x75,                         // Cluster ID
    0x98,                                           // size 24
    0xe7, 0x88,                                     // Timestamp, size 8
    0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, //   2^53 - 3
    0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x11,       // SimpleBlock: track 1, rel 0, key
    0xa3, 0x85, 0x81, 0x00, 0x05, 0x80, 0x12,       // SimpleBlock: track 1, rel 5, key: its piece would start at 2^53 + 2
  ]);
  for (const over of [{}, { timestampOffset: 3 }]) {
    assert.throws(
      () => processCluster(job(input, over)),
      (err: unknown) => err instanceof CorruptStreamError && /beyond 2\^53/.test(err.message),
    );
  }
});

test('a bad job is a RangeError, not a corrupt stream', () => {
  assert.throws(() => processCluster(job(MID_GOP, { timestampOffset: -1 })), RangeError);
  assert.throws(() => processCluster(job(MID_GOP, { videoTrack: 1.5 })), RangeError);
});

test('the input buffer is left unchanged, also when it is a view into a larger buffer', () => {
  const backing = Buffer.alloc(MID_GOP.length + 6, 0x55);
  backing.set(MID_GOP, 3);
  const view = backing.subarray(3, 3 + MID_GOP.length);
  const before = Buffer.from(backing);
  const pieces = processCluster(job(view));
  assert.equal(pieces.length, 2);
  assert.deepEqual(backing, before);
  // The pieces do not share memory with the input.
  for (const piece of pieces) assert.notEqual(piece.bytes.buffer, backing.buffer);
});

test('the piscina worker gives what processCluster gives', async () => {
  const pool = new Piscina({ filename: new URL('../src/clusterWorker.js', import.meta.url).href, minThreads: 1, maxThreads: 1 });
  try {
    const input = job(MID_GOP, { timestampOffset: 7 });
    const remote: ClusterPiece[] = await pool.run(input);
    const local = processCluster(input);
    assert.deepEqual(
      remote.map((p) => ({ ...p, bytes: Buffer.from(p.bytes).toString('hex') })),
      local.map((p) => ({ ...p, bytes: Buffer.from(p.bytes).toString('hex') })),
    );
  } finally {
    await pool.destroy();
  }
});
