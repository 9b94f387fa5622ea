// The ingest from input bytes to published pieces, with a recording hub in place of the real
// one: each input chunk's blocks go out at once as self-contained Clusters, a video keyframe
// opens a piece (or is its first video block), and every piece parses as a Cluster (read by an
// independent EBML walk).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Logger, type CheckpointMessage, type StreamCheckpoint } from '@mkvcast/shared';
import { EBML_WEBM, SEGMENT_UNKNOWN, readVint } from '@mkvcast/shared/testing';
import type { Hub } from '../src/hub.js';
import { StreamIngest } from '../src/ingest.js';
import { InlineHeaderBuilder } from '../src/headerDecode.js';
import type { HeaderBuilder } from '../src/headerBuilder.js';
import type { LiveHeader } from '../src/header.js';
import type { SessionSource } from '../src/inputs/session.js';

// ------------------------------------------------------------------ fixtures: every byte commented

/** Info, TimestampScale 1 ms: 12 bytes. */
const INFO = [
  0x15, 0x49, 0xa9, 0x66, // Info ID
  0x87, //                   size 7
  0x2a, 0xd7, 0xb1, 0x83, // TimestampScale, size 3
  0x0f, 0x42, 0x40, //       = 1 000 000 ns
];

/** Tracks: 1 = VP8 video, 2 = Opus audio: 36 bytes. */
const TRACKS_AV = [
  0x16, 0x54, 0xae, 0x6b, // Tracks ID
  0x9f, //                   size 31
  0xae, 0x8d, //             TrackEntry, size 13
  0xd7, 0x81, 0x01, //         TrackNumber 1
  0x83, 0x81, 0x01, //         TrackType 1 (video)
  0x86, 0x85, 0x56, 0x5f, 0x56, 0x50, 0x38, // CodecID "V_VP8"
  0xae, 0x8e, //             TrackEntry, size 14
  0xd7, 0x81, 0x02, //         TrackNumber 2
  0x83, 0x81, 0x02, //         TrackType 2 (audio)
  0x86, 0x86, 0x41, 0x5f, 0x4f, 0x50, 0x55, 0x53, // CodecID "A_OPUS"
];

/** Tracks: 1 = Opus audio only: 20 bytes. */
const TRACKS_AUDIO = [
  0x16, 0x54, 0xae, 0x6b, // Tracks ID
  0x90, //                   size 16
  0xae, 0x8e, //             TrackEntry, size 14
  0xd7, 0x81, 0x01, //         TrackNumber 1
  0x83, 0x81, 0x02, //         TrackType 2 (audio)
  0x86, 0x86, 0x41, 0x5f, 0x4f, 0x50, 0x55, 0x53, // CodecID "A_OPUS"
];

const HEAD_AV = [...EBML_WEBM, ...SEGMENT_UNKNOWN, ...INFO, ...TRACKS_AV];

/** Cluster ID and unknown size, then Timestamp (2 bytes). */
function clusterHead(timestamp: number): number[] {
  return [
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
    0xe7, 0x82, timestamp >> 8, timestamp & 0xff, // Timestamp, size 2
  ];
}

/** SimpleBlock: ID, size, track (1-byte VINT), int16 relative timestamp, flags, one frame byte. */
function simple(track: number, rel: number, flags: number, frame: number): number[] {
  return [
    0xa3, 0x85, //              SimpleBlock, size 5
    0x80 | track, //            track number
    (rel >> 8) & 0xff, rel & 0xff, // relative timestamp
    flags, //                   0x80 keyframe
    frame, //                   frame data
  ];
}

/** Cluster A (unknown size, Timestamp 1000): every kind of block, and a keyframe in a BlockGroup. */
const CLUSTER_A = [
  ...clusterHead(1000),
  ...simple(1, 0, 0x80, 0x10), //          video keyframe, 1000
  ...simple(2, 0, 0x80, 0x20), //          audio, 1000
  0xa3, 0x87, //                           SimpleBlock, size 7: audio, laced
  0x82, 0x00, 0x14, //                       track 2, relative timestamp 20
  0x82, //                                   flags: keyframe, Xiph lacing
  0x01, //                                   2 frames
  0x01, 0x21, //                             first frame 1 byte (second: the rest), frame data
  0xa0, 0x8a, //                           BlockGroup, size 10: video, not a keyframe
  0xa1, 0x85, 0x81, 0x00, 0x28, 0x00, 0x11, // Block, size 5: track 1, rel 40, flags 0, frame
  0xfb, 0x81, 0xd8, //                       ReferenceBlock, size 1, = -40
  ...simple(2, 60, 0x80, 0x22), //         audio, 1060
  0xa0, 0x8a, //                           BlockGroup, size 10: video, a keyframe (no ReferenceBlock)
  0xa1, 0x85, 0x81, 0x00, 0x50, 0x00, 0x12, // Block, size 5: track 1, rel 80, flags 0, frame
  0x9b, 0x81, 0x28, //                       BlockDuration, size 1, = 40
  ...simple(2, 80, 0x80, 0x23), //         audio, 1080
  ...simple(1, 120, 0x00, 0x13), //        video, not a keyframe, 1120
];

/** Cluster B (known size, Timestamp 1160): opens mid-GOP, a keyframe at +40. */
const CLUSTER_B = [
  0x1f, 0x43, 0xb6, 0x75, // Cluster ID
  0xa0, //                   size 32
  0xe7, 0x82, 0x04, 0x88, // Timestamp, size 2, = 1160
  ...simple(1, 0, 0x00, 0x14), //  video, not a keyframe, 1160
  ...simple(2, 0, 0x80, 0x24), //  audio, 1160
  ...simple(1, 40, 0x80, 0x15), // video keyframe, 1200
  ...simple(2, 40, 0x80, 0x25), // audio, 1200
];

const STREAM_AV = Buffer.from([...HEAD_AV, ...CLUSTER_A, ...CLUSTER_B]);
/** Offsets where each block of the stream ends, in stream order. */
const BLOCK_ENDS = blockEnds(STREAM_AV, HEAD_AV.length);

// ------------------------------------------------------------------ an independent reader
// Deliberately not the code under test (nor shared/vint.ts): a plain EBML walk, on the test helpers' readVint.

interface ParsedBlock {
  track: number;
  /** Cluster Timestamp + relative timestamp. */
  time: number;
  keyframe: boolean;
  /** The whole SimpleBlock/BlockGroup element, hex. */
  hex: string;
}

interface ParsedCluster {
  knownSize: boolean;
  timestamp: number;
  /** Children IDs in order, Timestamp included. */
  childIds: number[];
  blocks: ParsedBlock[];
}

/** A Cluster's children and blocks; asserts that its size covers exactly `buf`. */
function parseCluster(buf: Uint8Array): ParsedCluster {
  const id = readVint(buf, 0, true);
  assert.equal(id.value, 0x1f43b675, 'Cluster ID');
  const size = readVint(buf, id.length, false);
  let pos = id.length + size.length;
  const end = size.allOnes ? buf.length : pos + size.value;
  assert.equal(end, buf.length, 'the Cluster size covers its bytes exactly');
  const children: { id: number; start: number; data: number; end: number }[] = [];
  while (pos < end) {
    const cid = readVint(buf, pos, true);
    const csize = readVint(buf, pos + cid.length, false);
    const data = pos + cid.length + csize.length;
    children.push({ id: cid.value, start: pos, data, end: data + csize.value });
    pos = data + csize.value;
  }
  assert.equal(pos, end, 'children fill the Cluster exactly');
  const ts = children.filter((c) => c.id === 0xe7);
  assert.equal(ts.length, 1, 'one Timestamp');
  let timestamp = 0;
  for (let i = ts[0]!.data; i < ts[0]!.end; i++) timestamp = timestamp * 256 + buf[i]!;
  const blocks: ParsedBlock[] = [];
  for (const c of children) {
    let blockData = -1;
    let keyframe: boolean | null = null;
    if (c.id === 0xa3) blockData = c.data;
    if (c.id === 0xa0) {
      keyframe = true;
      for (let p = c.data; p < c.end; ) {
        const gid = readVint(buf, p, true);
        const gsize = readVint(buf, p + gid.length, false);
        if (gid.value === 0xa1) blockData = p + gid.length + gsize.length;
        if (gid.value === 0xfb) keyframe = false;
        p += gid.length + gsize.length + gsize.value;
      }
    }
    if (blockData < 0) continue;
    const track = readVint(buf, blockData, false);
    const at = blockData + track.length;
    const rel = ((buf[at]! << 24) >> 16) | buf[at + 1]!;
    blocks.push({
      track: track.value,
      time: timestamp + rel,
      keyframe: keyframe ?? (buf[at + 2]! & 0x80) !== 0,
      hex: Buffer.from(buf.subarray(c.start, c.end)).toString('hex'),
    });
  }
  return { knownSize: !size.allOnes, timestamp, childIds: children.map((c) => c.id), blocks };
}

/** Where each block of a stream ends: walks the Clusters after the header. */
function blockEnds(stream: Buffer, from: number): number[] {
  const ends: number[] = [];
  let pos = from;
  while (pos < stream.length) {
    const id = readVint(stream, pos, true);
    assert.equal(id.value, 0x1f43b675);
    const size = readVint(stream, pos + id.length, false);
    let child = pos + id.length + size.length;
    const end = size.allOnes ? stream.length : child + size.value;
    while (child < end) {
      const cid = readVint(stream, child, true);
      if (cid.value === 0x1f43b675) break;
      const csize = readVint(stream, child + cid.length, false);
      child += cid.length + csize.length + csize.value;
      if (cid.value === 0xa3 || cid.value === 0xa0) ends.push(child);
    }
    pos = child;
  }
  return ends;
}

/** Every block of the input, in order, read as one unknown-size Cluster each way they came. */
function inputBlocks(stream: Buffer, from: number): ParsedBlock[] {
  const blocks: ParsedBlock[] = [];
  let pos = from;
  while (pos < stream.length) {
    const size = readVint(stream, pos + 4, false);
    const end = size.allOnes ? nextCluster(stream, pos + 4 + size.length) : pos + 4 + size.length + size.value;
    const cluster = Buffer.concat([stream.subarray(pos, pos + 4), Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), stream.subarray(pos + 4 + size.length, end)]);
    blocks.push(...parseCluster(cluster).blocks);
    pos = end;
  }
  return blocks;
}

function nextCluster(stream: Buffer, from: number): number {
  const at = stream.indexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]), from);
  return at < 0 ? stream.length : at;
}

// ------------------------------------------------------------------ running the ingest

interface Published {
  ts: number;
  keyframe: boolean;
  bytes: Buffer;
  parsed: ParsedCluster;
}

interface Run {
  published: Published[];
  checkpoints: number;
  /** Pieces published past what the last checkpoint promised (sequence number, or a block's time). */
  unpromised: number;
  /** Every header the ingest opened the stream with. */
  headers: LiveHeader[];
}

/** Ingests `chunks` as one session (or each of `sessions` in turn), unpaced unless asked, and returns what it published. */
async function ingest(
  chunks: Buffer[],
  resume?: StreamCheckpoint,
  sessions: Buffer[][] = [chunks],
  headerBuilder: HeaderBuilder = new InlineHeaderBuilder(),
  paced = false,
): Promise<Run> {
  const published: Published[] = [];
  const headers: LiveHeader[] = [];
  let checkpoints = 0;
  let unpromised = 0;
  let promise: CheckpointMessage | undefined;
  const header = { generation: 1, docType: 'webm', tracks: [], bytes: Buffer.alloc(0) };
  const hub = {
    openStream: (_name: string, live: LiveHeader) => headers.push(live) === 1,
    publish: (_name: string, ts: number, keyframe: boolean, bytes: Uint8Array) => {
      const copy = Buffer.from(bytes);
      const parsed = parseCluster(copy);
      const seq = published.length;
      if (!promise || seq >= promise.nextSeq || parsed.blocks.some((b) => b.time > promise!.lastTicks)) unpromised++;
      published.push({ ts, keyframe, bytes: copy, parsed });
    },
    state: () => ({ header, nextSeq: published.length }),
  } as unknown as Hub;
  const stream = new StreamIngest('t', {
    paced,
    published: false,
    hub,
    log: new Logger('test', 'error'),
    ffmpeg: null,
    headers: headerBuilder,
    ...(resume ? { resume } : {}),
    checkpoint: (message) => {
      checkpoints++;
      promise = message;
    },
  });
  let given = 0;
  const source: SessionSource = {
    next: async () => (given < sessions.length ? { stream: Readable.from(sessions[given++]!), label: `pass ${given}` } : null),
    close: () => undefined,
  };
  await stream.run(source, true);
  return { published, checkpoints, unpromised, headers };
}

/** `input` cut at the given offsets. */
function cut(input: Buffer, at: number[]): Buffer[] {
  const points = [0, ...at.filter((p) => p > 0 && p < input.length), input.length];
  return points.slice(1).map((end, i) => input.subarray(points[i]!, end));
}

/**
 * What must hold however the input was chunked: every piece a known-size Cluster with its
 * Timestamp first; the pieces' blocks are the input's, in order, at the same times; every video
 * keyframe is the first video block of a piece flagged keyframe, and only such pieces are
 * flagged (audio-only streams: every piece).
 */
function assertPieces(run: Run, input: Buffer, headLength: number, videoTrack: number): void {
  const { published } = run;
  assert.ok(published.length > 0, 'something was published');
  for (const [i, p] of published.entries()) {
    assert.deepEqual([...p.bytes.subarray(0, 5)], [0x1f, 0x43, 0xb6, 0x75, 0x01], `piece ${i}: Cluster ID, 8-byte size`);
    assert.ok(p.parsed.knownSize, `piece ${i}: known size`);
    assert.equal(p.parsed.childIds[0], 0xe7, `piece ${i}: Timestamp first`);
    assert.ok(p.parsed.blocks.length > 0, `piece ${i}: has blocks`);
    const video = p.parsed.blocks.filter((b) => b.track === videoTrack);
    const opensOnKey = videoTrack === 0 || video[0]?.keyframe === true;
    assert.equal(p.keyframe, opensOnKey, `piece ${i}: keyframe flag`);
    for (const b of video.slice(1)) assert.ok(!b.keyframe, `piece ${i}: a video keyframe after its first video block`);
  }
  assert.deepEqual(published.flatMap((p) => p.parsed.blocks), inputBlocks(input, headLength), 'the blocks, in order, at their times');
  assert.equal(run.unpromised, 0, 'every piece within what a checkpoint sent before it promised');
  // Promises run a second of media ahead: these short inputs need one checkpoint a session or so.
  assert.ok(published.length === 1 || run.checkpoints < published.length, `${run.checkpoints} checkpoints for ${published.length} pieces`);
}

// ------------------------------------------------------------------ tests

test('each input chunk\'s blocks go out at once: one block per chunk, one piece per block', async () => {
  // The header and the first Cluster's head come with the first block; then one block per chunk.
  const run = await ingest(cut(STREAM_AV, BLOCK_ENDS));
  assertPieces(run, STREAM_AV, HEAD_AV.length, 1);
  assert.equal(run.published.length, BLOCK_ENDS.length);
  assert.deepEqual(run.published.map((p) => p.keyframe), [
    true, false, false, false, false, true, false, false, // Cluster A: keyframes at 1000 and 1080 (a BlockGroup)
    false, false, true, false, //                          Cluster B: keyframe at 1200
  ]);
  // ms since the stream's start: each piece's first block.
  assert.deepEqual(run.published.map((p) => p.ts), [0, 0, 20, 40, 60, 80, 80, 120, 160, 160, 200, 200]);
  // The first piece byte for byte.
  assert.equal(run.published[0]!.bytes.toString('hex'), Buffer.from([
    0x1f, 0x43, 0xb6, 0x75, //                         Cluster ID
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x11, // size 17, as an 8-byte VINT
    0xe7, 0x88, //                                     Timestamp, size 8
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, // = 1000
    0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x10, //       the SimpleBlock as received
  ]).toString('hex'));
});

test('what arrives together travels together: one chunk gives pieces cut only at keyframes and Clusters', async () => {
  const run = await ingest([STREAM_AV]);
  assertPieces(run, STREAM_AV, HEAD_AV.length, 1);
  assert.deepEqual(run.published.map((p) => [p.ts, p.keyframe, p.parsed.blocks.length]), [
    [0, true, 5], //    Cluster A from its first keyframe
    [80, true, 3], //   its BlockGroup keyframe on
    [160, false, 2], // Cluster B up to its keyframe
    [200, true, 2], //  from there
  ]);
});

test('a paced input is cut as if it came in one chunk, however it was read', async () => {
  const whole = await ingest([STREAM_AV], undefined, undefined, undefined, true);
  const hex = (run: Run): string[] => run.published.map((p) => p.bytes.toString('hex'));
  let seed = 11;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const chunkings = [BLOCK_ENDS, [1, 2, 3]];
  for (let round = 0; round < 4; round++) {
    const points: number[] = [];
    for (let p = 0; p < STREAM_AV.length; p += 1 + Math.floor(next() * 24)) points.push(p);
    chunkings.push(points);
  }
  for (const at of chunkings) {
    const run = await ingest(cut(STREAM_AV, at), undefined, undefined, undefined, true);
    assertPieces(run, STREAM_AV, HEAD_AV.length, 1);
    assert.deepEqual(hex(run), hex(whole), `cut at ${at.join(', ')}`);
  }
});

test('audio written just before a keyframe rides with it: the piece\'s first video block is the keyframe', async () => {
  const cluster = [
    ...clusterHead(0),
    ...simple(2, 0, 0x80, 0x20), //  audio, 0 (ffmpeg writes it first)
    ...simple(1, 7, 0x80, 0x10), //  video keyframe, 7
    ...simple(2, 20, 0x80, 0x21), // audio, 20
  ];
  const input = Buffer.from([...HEAD_AV, ...cluster]);
  const together = await ingest([input]);
  assertPieces(together, input, HEAD_AV.length, 1);
  assert.deepEqual(together.published.map((p) => [p.ts, p.keyframe, p.parsed.blocks.length]), [[0, true, 3]]);
  // Written apart, the audio goes at once, in a piece no player starts on.
  const apart = await ingest(cut(input, blockEnds(input, HEAD_AV.length)));
  assertPieces(apart, input, HEAD_AV.length, 1);
  assert.deepEqual(apart.published.map((p) => [p.ts, p.keyframe]), [[0, false], [7, true], [20, false]]);
});

test('every split point of the input into two chunks gives valid pieces', async () => {
  for (let at = 1; at < STREAM_AV.length; at++) {
    const run = await ingest(cut(STREAM_AV, [at]));
    assertPieces(run, STREAM_AV, HEAD_AV.length, 1);
  }
});

test('random chunkings, down to 1 byte, give valid pieces', async () => {
  let seed = 7;
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 50; round++) {
    const points: number[] = [];
    for (let p = 0; p < STREAM_AV.length; p += 1 + Math.floor(next() * (round % 5 === 0 ? 2 : 24))) points.push(p);
    assertPieces(await ingest(cut(STREAM_AV, points)), STREAM_AV, HEAD_AV.length, 1);
  }
});

test('audio only: every piece is a start point, and one chunk is cut about every second', async () => {
  const cluster = [...clusterHead(0)];
  for (let i = 0; i < 30; i++) cluster.push(...simple(1, i * 100, 0x80, i)); // a frame every 100 ms
  const head = [...EBML_WEBM, ...SEGMENT_UNKNOWN, ...INFO, ...TRACKS_AUDIO];
  const input = Buffer.from([...head, ...cluster]);
  const run = await ingest([input]);
  assertPieces(run, input, head.length, 0);
  assert.deepEqual(run.published.map((p) => [p.ts, p.keyframe, p.parsed.blocks.length]), [
    [0, true, 10],
    [1000, true, 10],
    [2000, true, 10],
  ]);
});

test('a block past 2^53 ticks fails the input with a corrupt-stream error', async () => {
  const head = [
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
    0xe7, 0x87, //             Timestamp, size 7
    0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // = 2^53 - 1
  ];
  const input = Buffer.from([...HEAD_AV, ...head, ...simple(1, 1, 0x80, 0x10)]); // a keyframe 1 tick later
  await assert.rejects(ingest([input]), { code: 'MKV_ERR_CORRUPT_STREAM', message: /beyond 2\^53/ });
});

test('a block whose duration ends past 2^53 ticks fails the input with a corrupt-stream error', async () => {
  const head = [
    0x1f, 0x43, 0xb6, 0x75, // Cluster ID
    0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // size unknown
    0xe7, 0x87, //             Timestamp, size 7
    0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, // = 2^53 - 2
  ];
  const group = [
    0xa0, 0x8a, //                               BlockGroup, size 10: video, a keyframe (no ReferenceBlock)
    0xa1, 0x85, 0x81, 0x00, 0x00, 0x00, 0x10, // Block, size 5: track 1, rel 0, flags 0, frame
    0x9b, 0x81, 0x05, //                         BlockDuration, size 1, = 5: it ends at 2^53 + 3
  ];
  const input = Buffer.from([...HEAD_AV, ...head, ...group]);
  await assert.rejects(ingest([input]), { code: 'MKV_ERR_CORRUPT_STREAM', message: /ends beyond 2\^53/ });
});

test('a block whose bytes contradict its framing fails the input with a corrupt-stream error', async () => {
  const bad = [
    0xa3, 0x82, //       SimpleBlock, size 2
    0x81, 0x00, //       track 1, then only one byte of its timestamp: no flags
  ];
  const input = Buffer.from([...HEAD_AV, ...clusterHead(0), ...bad]);
  await assert.rejects(ingest([input]), { code: 'MKV_ERR_CORRUPT_STREAM', message: /a block shorter than its header/ });
});

// ------------------------------------------------------------------ seams

/** Tracks: 1 = VP8 video with DefaultDuration 40 ms, 2 = Opus audio without one: 44 bytes. */
const TRACKS_DEFAULT = [
  0x16, 0x54, 0xae, 0x6b, // Tracks ID
  0xa7, //                   size 39
  0xae, 0x95, //             TrackEntry, size 21
  0xd7, 0x81, 0x01, //         TrackNumber 1
  0x83, 0x81, 0x01, //         TrackType 1 (video)
  0x86, 0x85, 0x56, 0x5f, 0x56, 0x50, 0x38, // CodecID "V_VP8"
  0x23, 0xe3, 0x83, 0x84, //   DefaultDuration, size 4
  0x02, 0x62, 0x5a, 0x00, //   = 40 000 000 ns
  0xae, 0x8e, //             TrackEntry, size 14
  0xd7, 0x81, 0x02, //         TrackNumber 2
  0x83, 0x81, 0x02, //         TrackType 2 (audio)
  0x86, 0x86, 0x41, 0x5f, 0x4f, 0x50, 0x55, 0x53, // CodecID "A_OPUS"
];

/**
 * One pass of a looped file: video at 7, 47, …, 167 (ends at 207 by DefaultDuration), audio at
 * 0, 20, …, 200 (ends at 220 by its frame step): the audio runs 13 ms longer, as ffmpeg's Opus does.
 */
function loopPass(): Buffer {
  const blocks: Array<[number, number[]]> = [];
  for (let t = 7; t <= 167; t += 40) blocks.push([t, simple(1, t, t === 7 ? 0x80 : 0x00, t)]);
  for (let t = 0; t <= 200; t += 20) blocks.push([t, simple(2, t, 0x80, t)]);
  blocks.sort((a, b) => a[0] - b[0]);
  const cluster = [...clusterHead(0), ...blocks.flatMap(([, block]) => block)];
  return Buffer.from([...EBML_WEBM, ...SEGMENT_UNKNOWN, ...INFO, ...TRACKS_DEFAULT, ...cluster]);
}

/** Every block's output time per track, from what was published. */
function times(run: Run): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const b of run.published.flatMap((p) => p.parsed.blocks)) out.set(b.track, [...(out.get(b.track) ?? []), b.time]);
  return out;
}

test('a loop seam: the track that ends last goes on without a hole, the other keeps only the input\'s difference', async () => {
  const pass = loopPass();
  const run = await ingest([], undefined, [[pass], [pass], [pass]]);
  const t = times(run);
  const video = t.get(1)!;
  const audio = t.get(2)!;
  assert.deepEqual(video.slice(0, 5), [7, 47, 87, 127, 167]);
  // Audio ends at 220 (200 + its 20 ms step); the next pass's audio starts there, and its
  // video 7 later, as in the file: 227 after a video that ended at 207 (a 20 ms hole, was 60).
  assert.deepEqual(audio.slice(10, 13), [200, 220, 240]);
  assert.deepEqual(video.slice(4, 7), [167, 227, 267]);
  assert.deepEqual(audio.slice(21, 23), [420, 440]); // second seam: 220 + 220
  assert.deepEqual(video.slice(9, 11), [387, 447]);
  // Audio steps are all 20, video steps 40 but at the seams (60): never back, never a frame's worth of hole in audio.
  for (const [track, list] of t) {
    const steps = list.slice(1).map((x, i) => x - list[i]!);
    assert.deepEqual([...new Set(steps)].sort((a, b) => a - b), track === 1 ? [40, 60] : [20], `track ${track} steps`);
  }
});

test('a pass with the Info and Tracks of the pass before is not decoded again', async () => {
  const inline = new InlineHeaderBuilder();
  let decoded = 0;
  const counting: HeaderBuilder = {
    build: (...args) => (decoded++, inline.build(...args)),
    close: async () => undefined,
  };
  const pass = loopPass();
  const other = Buffer.from([...EBML_WEBM, ...SEGMENT_UNKNOWN, ...INFO, ...TRACKS_AV, ...CLUSTER_A]); // other Tracks
  const run = await ingest([], undefined, [[pass], [pass], [other], [pass]], counting);
  assert.equal(decoded, 3, 'the first pass, and each pass whose Tracks changed');
  assert.equal(run.headers.length, 4);
  assert.deepEqual(run.headers[1], run.headers[0], 'the same header again');
  assert.deepEqual(run.headers[3], run.headers[0]);
  assert.deepEqual(run.headers[2]!.tracks.map((t) => t.codec), ['V_VP8', 'A_OPUS']);
  assert.ok(run.published.length > 0);
});

test('a BlockDuration (BlockGroup) and a laced block\'s frames count in where a track ends', async () => {
  const cluster = [
    ...clusterHead(0),
    ...simple(1, 0, 0x80, 0x10), //           video keyframe at 0 (DefaultDuration 40)
    0xa0, 0x8a, //                            BlockGroup, size 10
    0xa1, 0x85, 0x81, 0x00, 0x28, 0x00, 0x11, // Block, size 5: track 1, rel 40, flags 0, frame
    0x9b, 0x81, 0x64, //                        BlockDuration, size 1, = 100 (ends at 140)
    0xa3, 0x8a, //                            SimpleBlock, size 10: video, laced
    0x81, 0x00, 0x8c, //                        track 1, relative timestamp 140
    0x02, //                                    flags: Xiph lacing
    0x02, //                                    3 frames (3 × 40: ends at 260)
    0x01, 0x01, //                              the first two frames' sizes: 1 byte each
    0x21, 0x22, 0x23, //                        the three frames
  ];
  const pass = Buffer.from([...EBML_WEBM, ...SEGMENT_UNKNOWN, ...INFO, ...TRACKS_DEFAULT, ...cluster]);
  const t = times(await ingest([], undefined, [[pass], [pass]]));
  assert.deepEqual(t.get(1), [0, 40, 140, 260, 300, 400]);
});

test('after a restart of the source, the first block goes where the published media ended', async () => {
  const pass = loopPass();
  const resume: StreamCheckpoint = {
    stream: 't', published: false, generation: 1, docType: 'webm', tracks: [], header: '', nextSeq: 10,
    lastTicks: 5000, originTicks: 1000,
  };
  const run = await ingest([pass], resume);
  const first = run.published[0]!;
  assert.equal(first.parsed.blocks[0]!.time, 5000);
  assert.equal(first.ts, 4000, 'ms since the stream\'s first timestamp');
});

test('a paced piece counts its latency from its release, not from the read of its chunk', async () => {
  // One chunk of a second of video, a keyframe every 100 ms: ten pieces, released over a second,
  // several of them in a step of the pacer's grid in which another was released.
  const cluster = [...clusterHead(0)];
  for (let i = 0; i < 10; i++) cluster.push(...simple(1, i * 100, 0x80, i));
  const input = Buffer.from([...HEAD_AV, ...cluster]);
  const staleness: number[] = [];
  const hub = {
    openStream: () => true,
    publish: (_name: string, _ts: number, _keyframe: boolean, _bytes: Uint8Array, arrivedAt: number) => {
      staleness.push(Date.now() - arrivedAt);
    },
    state: () => ({ header: { generation: 1, docType: 'webm', tracks: [], bytes: Buffer.alloc(0) }, nextSeq: staleness.length }),
  } as unknown as Hub;
  const stream = new StreamIngest('t', {
    paced: true,
    published: false,
    hub,
    log: new Logger('test', 'error'),
    ffmpeg: null,
    headers: new InlineHeaderBuilder(),
    checkpoint: () => undefined,
  });
  let given = false;
  const source: SessionSource = {
    next: async () => (given ? null : ((given = true), { stream: Readable.from([input]), label: 'paced' })),
    close: () => undefined,
  };
  await stream.run(source, true);
  assert.equal(staleness.length, 10);
  // Counted from the chunk's read, the last pieces were 900 ms old when they went out.
  assert.ok(Math.max(...staleness) < 100, `published pieces were ${staleness.join(', ')} ms old`);
});
