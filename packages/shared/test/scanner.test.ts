import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MatroskaScanner, type ScanEvent, type ScannerOptions } from '../src/ebml/scanner.js';
import { CorruptStreamError, ElementTooLargeError, TruncatedStreamError } from '../src/errors.js';
import { MKV_ID } from '../src/ebml/ids.js';
import { EBML_WEBM, SEGMENT_UNKNOWN } from './fuzzing.js';

// ---- hand-built fixtures: every byte commented --------------------------------

/** EBML header, DocType "matroska": 24 bytes. */
const EBML_MATROSKA = [
  0x1a, 0x45, 0xdf, 0xa3, // EBML header ID
  0x93, //                   size 19
  0x42, 0x86, 0x81, 0x01, // EBMLVersion, size 1, = 1
  0x42, 0x82, 0x88, //       DocType, size 8
  0x6d, 0x61, 0x74, 0x72, 0x6f, 0x73, 0x6b, 0x61, // "matroska"
  0x42, 0x87, 0x81, 0x04, // DocTypeVersion, size 1, = 4
];

/** SeekHead, to be skipped: 14 bytes. */
const SEEKHEAD = [
  0x11, 0x4d, 0x9b, 0x74, // SeekHead ID
  0x89, //                   size 9
  0x4d, 0xbb, 0x86, //       Seek, size 6
  0x53, 0xac, 0x83, //       SeekPosition, size 3
  0x00, 0x10, 0x00, //       = 4096
];

/** Info: 12 bytes. */
const INFO = [
  0x15, 0x49, 0xa9, 0x66, // Info ID
  0x87, //                   size 7
  0x2a, 0xd7, 0xb1, //       TimestampScale ID
  0x83, //                   size 3
  0x0f, 0x42, 0x40, //       = 1 000 000 ns
];

/** Tracks with one VP8 track: 20 bytes. */
const TRACKS = [
  0x16, 0x54, 0xae, 0x6b, // Tracks ID
  0x8f, //                   size 15
  0xae, 0x8d, //             TrackEntry, size 13
  0xd7, 0x81, 0x01, //       TrackNumber, size 1, = 1
  0x83, 0x81, 0x01, //       TrackType, size 1, = 1 (video)
  0x86, 0x85, //             CodecID, size 5
  0x56, 0x5f, 0x56, 0x50, 0x38, // "V_VP8"
];

/** Void at level 1, to be skipped: 5 bytes. */
const VOID = [
  0xec, //                   Void ID
  0x83, //                   size 3
  0x00, 0x00, 0x00, //       padding
];

/** CRC-32 at level 1, to be skipped: 6 bytes. */
const CRC32 = [
  0xbf, //                   CRC-32 ID
  0x84, //                   size 4
  0xde, 0xad, 0xbe, 0xef, // checksum (not checked)
];

/** Cluster of unknown size, one keyframe: 22 bytes. */
const CLUSTER_1 = [
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
  0xe7, 0x81, 0x00, //       Timestamp, size 1, = 0
  0xa3, 0x85, //             SimpleBlock, size 5
  0x81, //                   track 1
  0x00, 0x00, //             relative timestamp 0
  0x80, //                   flags: keyframe
  0xaa, //                   frame data
];

/** Cluster of unknown size, a Void child, one delta frame: 26 bytes. */
const CLUSTER_2 = [
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
  0xe7, 0x81, 0x21, //       Timestamp, size 1, = 33
  0xec, 0x81, 0x00, //       Void, size 1 (a global element: stays inside the Cluster)
  0xa3, 0x86, //             SimpleBlock, size 6
  0x81, //                   track 1
  0x00, 0x00, //             relative timestamp 0
  0x00, //                   flags: not a keyframe
  0xbb, 0xcc, //             frame data
];

/** Cluster of known size (2-byte size field): 16 bytes. */
const CLUSTER_KNOWN = [
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0x40, 0x0a, //             size 10, written in 2 bytes
  0xe7, 0x81, 0x42, //       Timestamp, size 1, = 66
  0xa3, 0x85, //             SimpleBlock, size 5
  0x81, //                   track 1
  0x00, 0x00, //             relative timestamp 0
  0x80, //                   flags: keyframe
  0xdd, //                   frame data
];

/** Cues, to be skipped: 9 bytes. */
const CUES = [
  0x1c, 0x53, 0xbb, 0x6b, // Cues ID
  0x84, //                   size 4
  0xbb, 0x82, //             CuePoint, size 2
  0xb3, 0x80, //             CueTime, size 0
];

/** Segment of known size holding Info + CLUSTER_KNOWN + Cues (12 + 16 + 9 = 37): 5 bytes. */
const SEGMENT_KNOWN_37 = [
  0x18, 0x53, 0x80, 0x67, // Segment ID
  0xa5, //                   size 37
];

/** A live WebM stream: EBML header, unknown-size Segment, SeekHead, Info, Tracks, Void, two unknown-size Clusters, Cues. */
const LIVE_PARTS = [EBML_WEBM, SEGMENT_UNKNOWN, SEEKHEAD, INFO, TRACKS, VOID, CRC32, CLUSTER_1, CLUSTER_2, CUES];
const LIVE = bytes(...LIVE_PARTS);
/** CLUSTER_1's events when it starts at stream offset `at`: Timestamp 0, its SimpleBlock, its end. */
const cluster1 = (at: number): ScanEvent[] => clusterEvents(at, 0, [CLUSTER_1.slice(15)]);
/** CLUSTER_2's events: Timestamp 33, its Void, its SimpleBlock, its end. */
const cluster2 = (at: number): ScanEvent[] => clusterEvents(at, 33, [CLUSTER_2.slice(15, 18), CLUSTER_2.slice(18)]);
/** CLUSTER_KNOWN's events: Timestamp 66, its SimpleBlock, its end. */
const clusterKnown = (at: number): ScanEvent[] => clusterEvents(at, 66, [CLUSTER_KNOWN.slice(9)]);

const LIVE_EVENTS: ScanEvent[] = [
  { kind: 'ebml', bytes: bytes(EBML_WEBM), docType: 'webm' },
  { kind: 'segment', unknownSize: true },
  { kind: 'element', id: MKV_ID.Info, bytes: bytes(INFO) },
  { kind: 'element', id: MKV_ID.Tracks, bytes: bytes(TRACKS) },
  ...cluster1(offsetOf(LIVE_PARTS, 7)), // 89
  ...cluster2(offsetOf(LIVE_PARTS, 8)), // 111
];

/** A file-like Matroska stream: known-size Segment, known-size Cluster, then a top-level Void. */
const FILE_PARTS = [EBML_MATROSKA, SEGMENT_KNOWN_37, INFO, CLUSTER_KNOWN, CUES, VOID];
const FILE = bytes(...FILE_PARTS);
const FILE_EVENTS: ScanEvent[] = [
  { kind: 'ebml', bytes: bytes(EBML_MATROSKA), docType: 'matroska' },
  { kind: 'segment', unknownSize: false },
  { kind: 'element', id: MKV_ID.Info, bytes: bytes(INFO) },
  ...clusterKnown(offsetOf(FILE_PARTS, 3)), // 41
];

// ---- helpers -----------------------------------------------------------------------

function bytes(...parts: number[][]): Buffer {
  return Buffer.from(parts.flat());
}

/** The events of one Cluster: its start (offset, Timestamp), each child, its end. */
function clusterEvents(offset: number, timestamp: number, children: number[][]): ScanEvent[] {
  return [
    { kind: 'cluster-start', offset, timestamp },
    ...children.map((child): ScanEvent => ({ kind: 'cluster-child', id: childId(child), bytes: bytes(child) })),
    { kind: 'cluster-end' },
  ];
}

/** The ID of an element written out as bytes (IDs keep their marker bits, RFC 8794 §5). */
function childId(element: number[]): number {
  const length = Math.clz32(element[0]!) - 23;
  return element.slice(0, length).reduce((id, b) => id * 256 + b, 0);
}

/** Offset of parts[index] in the concatenation of parts. */
function offsetOf(parts: number[][], index: number): number {
  return parts.slice(0, index).reduce((sum, part) => sum + part.length, 0);
}

/** Feeds `input` in chunks of the given sizes (cycled), then ends; returns every event. */
function scan(input: Buffer, chunkSizes: number[] = [input.length], options?: ScannerOptions): ScanEvent[] {
  const scanner = new MatroskaScanner(options);
  const events: ScanEvent[] = [];
  let pos = 0;
  for (let i = 0; pos < input.length; i++) {
    const size = Math.max(1, chunkSizes[i % chunkSizes.length]!);
    events.push(...scanner.push(input.subarray(pos, pos + size)));
    pos += size;
  }
  events.push(...scanner.end());
  assert.equal(scanner.bytesIn, input.length);
  return events;
}

/** Deterministic PRNG (mulberry32), so "random" chunkings repeat. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomSizes(seed: number, min: number, max: number, count: number): number[] {
  const next = prng(seed);
  return Array.from({ length: count }, () => min + Math.floor(next() * (max - min + 1)));
}

// ---- the happy paths -----------------------------------------------------------

test('live WebM: unknown-size Segment and Clusters; SeekHead, Void, CRC-32 and Cues skipped', () => {
  assert.deepEqual(scan(LIVE), LIVE_EVENTS);
});

test('an unknown-size Cluster still open at end() is ended by end()', () => {
  const scanner = new MatroskaScanner();
  const pushed = scanner.push(bytes(EBML_WEBM, SEGMENT_UNKNOWN, INFO, CLUSTER_1, CLUSTER_2));
  // CLUSTER_1 ends where CLUSTER_2's ID starts; CLUSTER_2's children are out, but it could still grow.
  assert.deepEqual(pushed.map((e) => e.kind), [
    'ebml', 'segment', 'element',
    'cluster-start', 'cluster-child', 'cluster-end', // CLUSTER_1
    'cluster-start', 'cluster-child', 'cluster-child', // CLUSTER_2, still open
  ]);
  assert.deepEqual(scanner.end(), [{ kind: 'cluster-end' }]);
  assert.deepEqual(scanner.end(), []); // idempotent
});

test('known sizes: Segment, Cluster; the Segment ends by its size and a top-level Void is skipped', () => {
  assert.deepEqual(scan(FILE), FILE_EVENTS);
});

test('an unknown-size Cluster in a known-size Segment ends at the Segment end', () => {
  const parts = [
    EBML_MATROSKA,
    [0x18, 0x53, 0x80, 0x67, 0x96], // Segment ID, size 22 = CLUSTER_1 exactly
    CLUSTER_1,
    VOID, // top level again: must not be taken into the Cluster (Void is a valid Cluster child)
  ];
  assert.deepEqual(scan(bytes(...parts)), [
    { kind: 'ebml', bytes: bytes(EBML_MATROSKA), docType: 'matroska' },
    { kind: 'segment', unknownSize: false },
    ...cluster1(29),
  ]);
});

test('an unknown-size Cluster ending a known-size Segment waits for the body of its last child', () => {
  const head = [
    ...EBML_MATROSKA, // 24 bytes
    0x18, 0x53, 0x80, 0x67, // Segment ID
    0x96, //                   size 22 = CLUSTER_1 exactly
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
    0xe7, 0x81, 0x00, //       Timestamp, size 1, = 0
    0xa3, 0x85, //             SimpleBlock, size 5: it ends exactly where the Segment does
  ];
  const body = [
    0x81, //                   track 1
    0x00, 0x00, //             relative timestamp 0
    0x80, //                   flags: keyframe
    0xaa, //                   frame data
  ];
  const scanner = new MatroskaScanner();
  // Only the SimpleBlock's header is here: neither it nor the Cluster's end may come out yet.
  assert.deepEqual(scanner.push(bytes(head)).map((e) => e.kind), ['ebml', 'segment', 'cluster-start']);
  assert.deepEqual(scanner.push(bytes(body)), cluster1(29).slice(1));
  assert.deepEqual(scanner.end(), []);
});

test('chained streams after a known-size Segment: the second EBML header and Segment are emitted again', () => {
  assert.deepEqual(scan(Buffer.concat([FILE, LIVE])), [...FILE_EVENTS, ...shifted(LIVE_EVENTS, FILE.length)]);
});

test('chained streams inside an unknown-size Segment: an EBML header ends the Cluster and the Segment', () => {
  const first = bytes(EBML_WEBM, SEGMENT_UNKNOWN, INFO, TRACKS, CLUSTER_1);
  const second = bytes(EBML_MATROSKA, SEGMENT_UNKNOWN, INFO, CLUSTER_2);
  assert.deepEqual(scan(Buffer.concat([first, second])), [
    { kind: 'ebml', bytes: bytes(EBML_WEBM), docType: 'webm' },
    { kind: 'segment', unknownSize: true },
    { kind: 'element', id: MKV_ID.Info, bytes: bytes(INFO) },
    { kind: 'element', id: MKV_ID.Tracks, bytes: bytes(TRACKS) },
    ...cluster1(first.length - CLUSTER_1.length),
    { kind: 'ebml', bytes: bytes(EBML_MATROSKA), docType: 'matroska' },
    { kind: 'segment', unknownSize: true },
    { kind: 'element', id: MKV_ID.Info, bytes: bytes(INFO) },
    ...cluster2(first.length + second.length - CLUSTER_2.length),
  ]);
});

test('DocType padded with zero bytes is accepted (RFC 8794 §7.4)', () => {
  const ebml = [
    0x1a, 0x45, 0xdf, 0xa3, // EBML header ID
    0x89, //                   size 9
    0x42, 0x82, 0x86, //       DocType, size 6
    0x77, 0x65, 0x62, 0x6d, // "webm"
    0x00, 0x00, //             zero padding
  ];
  const [event] = scan(bytes(ebml, SEGMENT_UNKNOWN));
  assert.equal(event?.kind === 'ebml' && event.docType, 'webm');
});

test('emitted bytes are copies that survive later pushes; header elements own their ArrayBuffer', () => {
  const scanner = new MatroskaScanner();
  const kept = scanner.push(bytes(EBML_WEBM, SEGMENT_UNKNOWN, INFO, TRACKS, CLUSTER_1, CLUSTER_2));
  // Make the internal buffer move and grow: many small Clusters, then a 3 MiB child.
  for (let i = 0; i < 2000; i++) scanner.push(bytes(CLUSTER_KNOWN, CLUSTER_1));
  scanner.push(bytes(CLUSTER_1.slice(0, 15), [0xec, 0x10, 0x30, 0x00, 0x00])); // Cluster, unknown size, Timestamp; Void child of 3 MiB
  const big = scanner.push(Buffer.alloc(3 << 20, 0x77)); // the Void's body
  for (const event of kept) {
    if (event.kind !== 'ebml' && event.kind !== 'element') continue;
    assert.equal(event.bytes.byteOffset, 0);
    assert.equal(event.bytes.buffer.byteLength, event.bytes.length);
  }
  const prefix = bytes(EBML_WEBM, SEGMENT_UNKNOWN, INFO, TRACKS).length;
  assert.deepEqual(kept, [
    ...LIVE_EVENTS.slice(0, 4),
    ...cluster1(prefix),
    ...cluster2(prefix + CLUSTER_1.length).slice(0, -1), // still open
  ]);
  assert.equal(big.length, 1);
  assert.equal(big[0]!.kind === 'cluster-child' && big[0]!.bytes.length, 5 + (3 << 20));
  assert.deepEqual(scanner.end(), [{ kind: 'cluster-end' }]);
});

test('bytesIn counts every byte pushed, skipped ones included', () => {
  const scanner = new MatroskaScanner();
  scanner.push(bytes(EBML_WEBM, SEGMENT_UNKNOWN));
  scanner.push(bytes([0xec, 0x10, 0x00, 0x10, 0x00])); // Void, size 4096 (4-byte size)
  scanner.push(Buffer.alloc(4096)); // its body, skipped without being held
  assert.equal(scanner.bytesIn, 20 + 12 + 5 + 4096);
});

test('a SeekHead or Cues larger than maxElementSize is skipped, not held', () => {
  const cues = [
    0x1c, 0x53, 0xbb, 0x6b, // Cues ID
    0x41, 0x00, //             size 256
  ];
  const input = Buffer.concat([bytes(EBML_WEBM, SEGMENT_UNKNOWN, cues), Buffer.alloc(256), bytes(CLUSTER_1)]);
  const events = scan(input, [7], { maxElementSize: 64 });
  assert.deepEqual(events.map((e) => e.kind), ['ebml', 'segment', 'cluster-start', 'cluster-child', 'cluster-end']);
});

// ---- a Cluster, child by child --------------------------------------------------

/** Cluster of unknown size whose Timestamp comes third; a BlockGroup and a laced SimpleBlock follow: 48 bytes. */
const CLUSTER_LATE_TS = [
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
  0xec, 0x81, 0x00, //       Void, size 1                      (held until the Timestamp)
  0xa3, 0x85, //             SimpleBlock, size 5               (held until the Timestamp)
  0x82, //                   track 2
  0x00, 0x00, //             relative timestamp 0
  0x80, //                   flags: keyframe
  0x11, //                   frame data
  0xe7, 0x82, 0x01, 0x00, // Timestamp, size 2, = 256
  0xa0, 0x8a, //             BlockGroup, size 10
  0xa1, 0x85, //               Block, size 5
  0x81, //                     track 1
  0x00, 0x14, //               relative timestamp 20
  0x00, //                     flags
  0x22, //                     frame data
  0xfb, 0x81, 0xec, //         ReferenceBlock, size 1, = -20
  0xa3, 0x88, //             SimpleBlock, size 8
  0x82, //                   track 2
  0x00, 0x28, //             relative timestamp 40
  0x82, //                   flags: keyframe, Xiph lacing
  0x01, //                   2 frames in the lace
  0x01, //                   first frame: 1 byte (the last one's size is implied)
  0x33, 0x44, //             the two frames
];

/** Cluster of known size ending by its size, a Void as its last child: 18 bytes. */
const CLUSTER_KNOWN_2 = [
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0x8d, //                   size 13
  0xe7, 0x81, 0x05, //       Timestamp, size 1, = 5
  0xa3, 0x85, //             SimpleBlock, size 5
  0x81, //                   track 1
  0x00, 0x00, //             relative timestamp 0
  0x80, //                   flags: keyframe
  0x55, //                   frame data
  0xec, 0x81, 0x00, //       Void, size 1 (a child: the Cluster runs to here)
];

/** Two Clusters, one child at a time: EBML header, Segment, Info, the late-Timestamp Cluster, a known-size one, CLUSTER_1. */
const CHILDREN_PARTS = [EBML_WEBM, SEGMENT_UNKNOWN, INFO, CLUSTER_LATE_TS, CLUSTER_KNOWN_2, CLUSTER_1];
const CHILDREN = bytes(...CHILDREN_PARTS);
const CHILDREN_EVENTS: ScanEvent[] = [
  { kind: 'ebml', bytes: bytes(EBML_WEBM), docType: 'webm' },
  { kind: 'segment', unknownSize: true },
  { kind: 'element', id: MKV_ID.Info, bytes: bytes(INFO) },
  // The Void and SimpleBlock before the Timestamp follow the cluster-start, in order.
  ...clusterEvents(offsetOf(CHILDREN_PARTS, 3), 256, [CLUSTER_LATE_TS.slice(12, 15), CLUSTER_LATE_TS.slice(15, 22), CLUSTER_LATE_TS.slice(26, 38), CLUSTER_LATE_TS.slice(38)]),
  ...clusterEvents(offsetOf(CHILDREN_PARTS, 4), 5, [CLUSTER_KNOWN_2.slice(8, 15), CLUSTER_KNOWN_2.slice(15)]),
  ...cluster1(offsetOf(CHILDREN_PARTS, 5)),
];

/** Feeds `input` one byte at a time: each event with the index of the byte that released it. */
function releasePoints(input: Buffer): Array<[string, number]> {
  const scanner = new MatroskaScanner();
  const points: Array<[string, number]> = [];
  for (let i = 0; i < input.length; i++) {
    for (const e of scanner.push(input.subarray(i, i + 1))) points.push([e.kind, i]);
  }
  for (const e of scanner.end()) points.push([e.kind, input.length]);
  return points;
}

test('Cluster children: a Timestamp after other children; BlockGroups and laced blocks are children like any other', () => {
  assert.deepEqual(scan(CHILDREN), CHILDREN_EVENTS);
});

test('each Cluster child is emitted by the push that completes it, never later', () => {
  const late = offsetOf(CHILDREN_PARTS, 3); //  44
  const known = offsetOf(CHILDREN_PARTS, 4); // 92
  const last = offsetOf(CHILDREN_PARTS, 5); //  110
  assert.deepEqual(releasePoints(CHILDREN).slice(3), [
    // The Timestamp's last byte releases the start and the two children held before it.
    ['cluster-start', late + 25],
    ['cluster-child', late + 25],
    ['cluster-child', late + 25],
    ['cluster-child', late + 37], // BlockGroup: its last byte
    ['cluster-child', late + 47], // laced SimpleBlock: its last byte
    ['cluster-end', known + 4], //   unknown size: ends once the next Cluster's ID and size are read
    ['cluster-start', known + 7],
    ['cluster-child', known + 14],
    ['cluster-child', known + 17],
    ['cluster-end', known + 17], //   known size: ends with its last byte
    ['cluster-start', last + 14],
    ['cluster-child', last + 21],
    ['cluster-end', CHILDREN.length], // unknown size, last in the stream: ended by end()
  ]);
});

test('a live muxer\'s open Cluster: blocks come out while it is still open', () => {
  const scanner = new MatroskaScanner();
  const head = bytes(EBML_WEBM, SEGMENT_UNKNOWN, INFO, CLUSTER_1.slice(0, 15)); // …, Cluster (unknown size), Timestamp 0
  assert.deepEqual(scanner.push(head).slice(3), [{ kind: 'cluster-start', offset: 44, timestamp: 0 }]);
  for (let i = 0; i < 100; i++) {
    const block = [
      0xa3, 0x85, //         SimpleBlock, size 5
      0x81, //               track 1
      0x00, i, //            relative timestamp i
      i === 0 ? 0x80 : 0, // flags: the first is a keyframe
      i, //                  frame data
    ];
    assert.deepEqual(scanner.push(bytes(block)), [{ kind: 'cluster-child', id: MKV_ID.SimpleBlock, bytes: bytes(block) }], `block ${i}`);
  }
  assert.deepEqual(scanner.end(), [{ kind: 'cluster-end' }]);
});

test('memory: only the child in progress is held, however long the Cluster', () => {
  // A 64 MiB unknown-size Cluster of 64 KiB blocks passes a scanner that holds at most 64 KiB + 8 of it.
  const scanner = new MatroskaScanner({ maxChildSize: 65536 + 8 });
  scanner.push(bytes(EBML_WEBM, SEGMENT_UNKNOWN, CLUSTER_1.slice(0, 15)));
  const block: Buffer = Buffer.concat([Buffer.from([0xa3]), size4(65536), Buffer.alloc(65536, 0x81)]); // SimpleBlock, 4-byte size, body
  let children = 0;
  for (let i = 0; i < 1024; i++) {
    children += scanner.push(block.subarray(0, 1000)).length; // a child in progress is held…
    assert.equal(scanner.bytesHeld, 1000);
    children += scanner.push(block.subarray(1000)).length; // …and let go once emitted
    assert.equal(scanner.bytesHeld, 0);
  }
  assert.equal(children, 1024);
});

test('Cluster errors: no Timestamp, two, a long one; a child overrunning its Cluster; held children over the limit', () => {
  const head = [...EBML_WEBM, ...SEGMENT_UNKNOWN]; // 32 bytes: the Cluster starts at byte 32
  const unknown = [0x1f, 0x43, 0xb6, 0x75, 0xff]; // Cluster ID, size unknown (1-byte VINT)
  const block = [0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x11]; // SimpleBlock, size 5: track 1, rel 0, keyframe, frame
  const cases: Array<[string, Buffer, RegExp, ScannerOptions?]> = [
    ['no Timestamp, ended by the next Cluster', bytes(head, unknown, block, unknown), /the Cluster at byte 32 has no Timestamp/],
    ['no Timestamp, ended by end()', bytes(head, unknown, block), /the Cluster at byte 32 has no Timestamp/],
    [
      'no Timestamp in a known-size Cluster',
      bytes(head, [0x1f, 0x43, 0xb6, 0x75, 0x87], block), // Cluster ID, size 7
      /the Cluster at byte 32 has no Timestamp/,
    ],
    ['two Timestamps', bytes(head, unknown, [0xe7, 0x81, 0x00, 0xe7, 0x81, 0x01]), /a second Timestamp at byte 40 in the Cluster at byte 32/],
    ['a Timestamp of 9 bytes', bytes(head, unknown, [0xe7, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 1]), /a Timestamp of 9 bytes/],
    [
      'a child past the end of a known-size Cluster',
      bytes(head, [0x1f, 0x43, 0xb6, 0x75, 0x86, 0xe7, 0x81, 0x00], block), // size 6: Timestamp (3) + 3 bytes
      /element 0xA3 at byte 40 runs to byte 47, past the end of its Cluster at byte 43/,
    ],
    [
      'a Cluster inside a known-size Cluster',
      bytes(head, [0x1f, 0x43, 0xb6, 0x75, 0x8a, 0xe7, 0x81, 0x00], [0x1f, 0x43, 0xb6, 0x75, 0x82, 0xe7, 0x80]),
      /Cluster at byte 40 inside the Cluster at byte 32, which runs to byte 47/,
    ],
    [
      'children before the Timestamp over maxChildSize',
      bytes(head, unknown, block, block, [0xe7, 0x81, 0x00]),
      /the children before the Timestamp of the Cluster at byte 32 of 14 bytes exceeds the limit of 13 bytes/,
      { maxChildSize: 13 },
    ],
  ];
  for (const [name, input, message, options] of cases) {
    const err = scanError(input, options);
    assert.ok(err instanceof CorruptStreamError || err instanceof ElementTooLargeError, `${name}: ${String(err)}`);
    assert.match((err as Error).message, message, name);
  }
});

// ---- chunking invariance --------------------------------------------------------

/** A varied stream built from the fixtures plus generated Clusters of random content and sizes. */
function buildLongStream(): { input: Buffer; events: ScanEvent[] } {
  const next = prng(42);
  const parts: Buffer[] = [];
  const events: ScanEvent[] = [];
  const at = (): number => parts.reduce((n, p) => n + p.length, 0);
  parts.push(bytes(EBML_WEBM, SEGMENT_UNKNOWN, SEEKHEAD, INFO, TRACKS, VOID));
  events.push(...LIVE_EVENTS.slice(0, 4));
  for (let i = 0; i < 60; i++) {
    const frameSize = i === 30 ? 200_000 : Math.floor(next() * 9000); // one block larger than 64 KiB
    const unknownSize = i % 3 === 0;
    const { cluster, block } = generatedCluster(frameSize, i, unknownSize, i % 7 === 3, next);
    events.push({ kind: 'cluster-start', offset: at(), timestamp: i });
    events.push({ kind: 'cluster-child', id: MKV_ID.SimpleBlock, bytes: block });
    parts.push(cluster);
    if (i % 13 === 5) {
      // Void and CRC-32 are global: after a known-size Cluster they are skipped at level 1,
      // after an unknown-size one they are its children (RFC 8794 §6.2, §11.3).
      parts.push(bytes(VOID, CRC32));
      if (unknownSize) {
        events.push({ kind: 'cluster-child', id: 0xec, bytes: bytes(VOID) });
        events.push({ kind: 'cluster-child', id: 0xbf, bytes: bytes(CRC32) });
      }
    }
    events.push({ kind: 'cluster-end' });
  }
  parts.push(bytes(CUES));
  const file = at();
  parts.push(Buffer.from(FILE));
  const live = at();
  parts.push(Buffer.from(LIVE));
  events.push(...shifted(FILE_EVENTS, file), ...shifted(LIVE_EVENTS, live));
  return { input: Buffer.concat(parts), events };
}

/** Events of a fixture placed at stream offset `by`: its cluster-start offsets move with it. */
function shifted(events: ScanEvent[], by: number): ScanEvent[] {
  return events.map((e) => (e.kind === 'cluster-start' ? { ...e, offset: e.offset + by } : e));
}

/**
 * A Cluster with Timestamp `timestamp` (0–255) and one SimpleBlock of `frameSize` random bytes; with
 * `timestampLast` the Timestamp comes after the block (allowed: RFC 9559 fixes no order).
 */
function generatedCluster(
  frameSize: number,
  timestamp: number,
  unknownSize: boolean,
  timestampLast: boolean,
  next: () => number,
): { cluster: Buffer; block: Buffer } {
  const frame = Buffer.from(Array.from({ length: frameSize }, () => Math.floor(next() * 256)));
  const block = Buffer.concat([
    Buffer.from([0xa3]), // SimpleBlock ID
    size4(4 + frameSize), // its size, 4 bytes
    Buffer.from([0x81, 0x00, 0x00, 0x80]), // track 1, relative timestamp 0, keyframe
    frame,
  ]);
  const timestampElement = Buffer.from([0xe7, 0x81, timestamp]); // Timestamp, size 1, value
  const body = Buffer.concat(timestampLast ? [block, timestampElement] : [timestampElement, block]);
  const size = unknownSize ? Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) : size4(body.length);
  return { cluster: Buffer.concat([Buffer.from([0x1f, 0x43, 0xb6, 0x75]), size, body]), block };
}

/** A size as a 4-byte VINT (marker 0x10). */
function size4(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  out[0]! |= 0x10;
  return out;
}

test('chunking invariance: 1-byte, 7, 13, random ~1000, 64 KiB and whole-input chunks give the same events', () => {
  const { input, events } = buildLongStream();
  assert.ok(input.length > 400_000);
  const chunkings: Array<[string, number[]]> = [
    ['whole', [input.length]],
    ['64 KiB', [65536]],
    ['1 byte', [1]],
    ['7 bytes', [7]],
    ['13 bytes', [13]],
    ['random 500-1500, seed 7', randomSizes(7, 500, 1500, 997)],
    ['random 1-40, seed 9', randomSizes(9, 1, 40, 101)],
  ];
  for (const [name, sizes] of chunkings) {
    assert.deepEqual(scan(input, sizes), events, `chunking: ${name}`);
  }
});

test('chunking invariance of the small fixtures, every split point', () => {
  for (const input of [LIVE, FILE, CHILDREN]) {
    const expected = scan(input);
    for (let cut = 1; cut < input.length; cut++) {
      assert.deepEqual(scan(input, [cut, input.length]), expected, `split at ${cut}`);
    }
  }
});

test('a 512 KiB unknown-size Cluster fed 1 byte at a time is not quadratic', { timeout: 20_000 }, async () => {
  const child = Buffer.concat([Buffer.from([0xa3, 0xe0]), Buffer.alloc(0x60, 0x11)]); // SimpleBlock, size 96, body
  const children = Buffer.concat(Array.from({ length: 5400 }, () => child)); // 5400 × 98 bytes
  const cluster = Buffer.concat([bytes(CLUSTER_1.slice(0, 15)), children]); // Cluster ID, unknown size, Timestamp 0
  const input = Buffer.concat([bytes(EBML_WEBM, SEGMENT_UNKNOWN), cluster, bytes(CUES)]);
  const scanner = new MatroskaScanner();
  const events: ScanEvent[] = [];
  for (let pos = 0; pos < input.length; pos++) {
    events.push(...scanner.push(input.subarray(pos, pos + 1)));
    if (pos % 16384 === 0) await new Promise(setImmediate); // let the test timeout fire if this is slow
  }
  events.push(...scanner.end());
  assert.equal(events.length, 3 + 5400 + 1);
  assert.deepEqual(events[2], { kind: 'cluster-start', offset: 32, timestamp: 0 });
  assert.deepEqual(events[3], { kind: 'cluster-child', id: MKV_ID.SimpleBlock, bytes: child });
  assert.deepEqual(events.at(-1), { kind: 'cluster-end' });
});

// ---- errors ------------------------------------------------------------------------

function scanError(input: Buffer, options?: ScannerOptions): unknown {
  try {
    scan(input, [input.length], options);
  } catch (err) {
    return err;
  }
  assert.fail('expected the scan to throw');
}

test('garbage first bytes: not a Matroska/WebM stream', () => {
  for (const input of [
    Buffer.from('GET / HTTP/1.1\r\n'), // an HTTP request
    bytes([0x00, 0x00, 0x00, 0x20, 0x66, 0x74, 0x79, 0x70]), // an MP4 'ftyp' box
    bytes(SEGMENT_UNKNOWN, CLUSTER_1), // Matroska without its EBML header
  ]) {
    const err = scanError(input);
    assert.ok(err instanceof CorruptStreamError, String(err));
    assert.equal(err.code, 'MKV_ERR_CORRUPT_STREAM');
    assert.match(err.message, /not a Matroska\/WebM stream \(no EBML header/);
  }
});

test('garbage is refused from its first bytes, without waiting for more', () => {
  const scanner = new MatroskaScanner();
  assert.throws(() => scanner.push(Buffer.from('GE')), /no EBML header; it starts with 47 45/);
});

test('wrong DocType', () => {
  const ebml = [
    0x1a, 0x45, 0xdf, 0xa3, // EBML header ID
    0x86, //                   size 6
    0x42, 0x82, 0x83, //       DocType, size 3
    0x66, 0x6f, 0x6f, //       "foo"
  ];
  const err = scanError(bytes(ebml, SEGMENT_UNKNOWN));
  assert.ok(err instanceof CorruptStreamError);
  assert.match(err.message, /unsupported DocType 'foo'/);
});

test('an EBML header without a DocType', () => {
  const ebml = [
    0x1a, 0x45, 0xdf, 0xa3, // EBML header ID
    0x84, //                   size 4
    0x42, 0x86, 0x81, 0x01, // EBMLVersion = 1, and nothing else
  ];
  assert.throws(() => scan(bytes(ebml, SEGMENT_UNKNOWN)), /has no DocType/);
});

test('an EBML header of unknown size', () => {
  const ebml = [
    0x1a, 0x45, 0xdf, 0xa3, // EBML header ID
    0xff, //                   size unknown
  ];
  assert.throws(() => scan(bytes(ebml, EBML_WEBM.slice(5))), { name: 'CorruptStreamError', message: /unknown size/ });
});

test('truncated input: end() says what was cut and where', () => {
  const info = offsetOf(LIVE_PARTS, 3); //     46
  const tracks = offsetOf(LIVE_PARTS, 4); //   58
  const cluster2 = offsetOf(LIVE_PARTS, 8); // 111: header 12, Timestamp 3, Void 3, SimpleBlock 8
  const knownCluster = offsetOf(FILE_PARTS, 3); // 41
  const cases: Array<[string, Buffer, string]> = [
    ['empty', Buffer.alloc(0), 'stream ended after 0 bytes, before any EBML header'],
    ['inside the EBML header', LIVE.subarray(0, 10), 'inside EBML header at byte 0: got 10 of its 20 bytes'],
    ['inside an ID', LIVE.subarray(0, info + 2), `inside the ID or size of an element at byte ${info}`],
    ['inside Tracks', LIVE.subarray(0, tracks + 7), `inside Tracks at byte ${tracks}: got 7 of its 20 bytes`],
    ['inside a skipped SeekHead', LIVE.subarray(0, 40), 'inside SeekHead at byte 32: got 8 of its 14 bytes'],
    [
      'inside a child of an unknown-size Cluster',
      LIVE.subarray(0, cluster2 + 20),
      `at byte ${cluster2 + 20} inside the Cluster of unknown size at byte ${cluster2}: its last child runs to byte ${cluster2 + 26}`,
    ],
    [
      'inside the size of a Cluster child',
      LIVE.subarray(0, cluster2 + 16),
      `Cluster of unknown size at byte ${cluster2}: the ID or size of its child at byte ${cluster2 + 15} is cut`,
    ],
    [
      'inside a known-size Cluster',
      FILE.subarray(0, knownCluster + 10),
      `inside Cluster at byte ${knownCluster}: got 10 of its 16 bytes`,
    ],
    [
      'between children of a known-size Segment',
      FILE.subarray(0, knownCluster),
      `at byte ${knownCluster} inside the Segment at byte 24, which runs to byte 66`,
    ],
  ];
  for (const [name, input, message] of cases) {
    const err = scanError(input);
    assert.ok(err instanceof TruncatedStreamError, `${name}: ${String(err)}`);
    assert.equal(err.code, 'MKV_ERR_TRUNCATED_STREAM');
    assert.ok(err.message.includes(message), `${name}: ${err.message}`);
  }
});

test('input cut right after a whole element ends cleanly', () => {
  const cut = LIVE.subarray(0, offsetOf(LIVE_PARTS, 8) + CLUSTER_2.length); // stops after CLUSTER_2
  assert.deepEqual(scan(cut), LIVE_EVENTS);
});

test('an oversize header element is refused as soon as its size is read', () => {
  const scanner = new MatroskaScanner({ maxElementSize: 100 });
  scanner.push(bytes(EBML_WEBM, SEGMENT_UNKNOWN, INFO));
  const tagsHeader = [
    0x12, 0x54, 0xc3, 0x67, // Tags ID
    0x43, 0xe8, //             size 1000; no body follows: no need to wait for it
  ];
  assert.throws(() => scanner.push(bytes(tagsHeader)), (err: unknown) => {
    assert.ok(err instanceof ElementTooLargeError);
    assert.equal(err.code, 'MKV_ERR_ELEMENT_TOO_LARGE');
    assert.match(err.message, /Tags at byte 44 of 1006 bytes exceeds the limit of 100 bytes/);
    return true;
  });
});

test('a Cluster child over maxChildSize is refused as soon as its size is read; the Cluster itself may be larger', () => {
  // CLUSTER_2's SimpleBlock is the largest child of LIVE: 8 bytes (in a 26-byte Cluster).
  const scanner = new MatroskaScanner({ maxChildSize: 7 });
  const blockAt = offsetOf(LIVE_PARTS, 8) + 18;
  scanner.push(LIVE.subarray(0, blockAt + 1)); // up to the SimpleBlock's ID: nothing to judge yet
  assert.throws(() => scanner.push(LIVE.subarray(blockAt + 1, blockAt + 2)), {
    name: 'ElementTooLargeError',
    message: new RegExp(`element 0xA3 at byte ${blockAt} in the Cluster at byte 111 of 8 bytes exceeds the limit of 7 bytes`),
  });
  assert.deepEqual(scan(LIVE, [1], { maxChildSize: 8 }), LIVE_EVENTS);
  assert.deepEqual(scan(FILE, [1], { maxChildSize: 7 }), FILE_EVENTS);
});

test('a Cluster child with an invalid vint is corrupt', () => {
  const prefix = bytes(EBML_WEBM, SEGMENT_UNKNOWN, CLUSTER_1.slice(0, 15)); // Cluster ID, size, Timestamp
  const badId = [0x00, 0x81, 0x00]; //  first byte 0x00: no VINT marker
  const badSize = [0xa3, 0x00, 0x81]; // SimpleBlock, size byte 0x00
  const unknown = [0xa3, 0xff, 0x81]; // SimpleBlock of unknown size
  assert.throws(() => scan(Buffer.concat([prefix, bytes(badId)])), {
    name: 'CorruptStreamError',
    message: /invalid element ID at byte 47 in the Cluster at byte 32 \(00 81 00\)/,
  });
  assert.throws(() => scan(Buffer.concat([prefix, bytes(badSize)])), {
    name: 'CorruptStreamError',
    message: /invalid size of element 0xA3 at byte 47 in the Cluster at byte 32/,
  });
  assert.throws(() => scan(Buffer.concat([prefix, bytes(unknown)])), {
    name: 'CorruptStreamError',
    message: /element 0xA3 at byte 47 in the Cluster at byte 32 has an unknown size/,
  });
});

test('a non-Cluster level-1 element of unknown size is corrupt', () => {
  const seekHead = [0x11, 0x4d, 0x9b, 0x74, 0xff]; // SeekHead ID, size unknown
  const info = [0x15, 0x49, 0xa9, 0x66, 0xff]; //    Info ID, size unknown
  for (const element of [seekHead, info]) {
    assert.throws(() => scan(bytes(EBML_WEBM, SEGMENT_UNKNOWN, element)), {
      name: 'CorruptStreamError',
      message: /at byte 32 in a Segment has an unknown size/,
    });
  }
});

test('a known-size Segment: an EBML header inside it, or a child overrunning it, is corrupt', () => {
  const segment = [0x18, 0x53, 0x80, 0x67, 0x90]; // Segment ID, size 16
  assert.throws(() => scan(bytes(EBML_WEBM, segment, EBML_WEBM)), /EBML header at byte 25 inside the Segment at byte 20/);
  assert.throws(() => scan(bytes(EBML_WEBM, segment, TRACKS)), /Tracks at byte 25 runs to byte 45, past the end of its Segment at byte 41/);
});

test('after a throw the scanner is dead: push() and end() throw the same error', () => {
  const scanner = new MatroskaScanner();
  let first: unknown;
  try {
    scanner.push(Buffer.from('not matroska'));
  } catch (err) {
    first = err;
  }
  assert.ok(first instanceof CorruptStreamError);
  assert.throws(() => scanner.push(bytes(EBML_WEBM)), (err: unknown) => err === first);
  assert.throws(() => scanner.end(), (err: unknown) => err === first);
});

test('push() after end() is a programming error', () => {
  const scanner = new MatroskaScanner();
  scanner.push(LIVE);
  scanner.end();
  assert.throws(() => scanner.push(LIVE), /after end/);
});
