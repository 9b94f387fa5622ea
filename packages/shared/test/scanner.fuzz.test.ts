/**
 * Property-based tests of MatroskaScanner: generated valid streams, their
 * truncations, mutations, huge declared sizes and garbage. The EBML writer
 * (fuzzing.ts) and the IDs below are independent of the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MatroskaScanner, type ScanEvent, type ScannerOptions } from '../src/ebml/scanner.js';
import { CorruptStreamError, ElementTooLargeError, TruncatedStreamError } from '../src/errors.js';
import {
  checkProperty,
  chunkingArb,
  el,
  extraArb,
  idBytes,
  isTypedError,
  largestAllocation,
  mutate,
  mutationArb,
  plainIdArb,
  sizeVint,
  split,
  unknownSize,
  vint,
} from './fuzzing.js';

const SCANNER_ERRORS = [CorruptStreamError, ElementTooLargeError, TruncatedStreamError];
/** The scanner's first buffer; it grows to at most 4× what it holds (ByteWindow#makeRoom). */
const WINDOW_INITIAL = 256 * 1024;

// ---- Matroska IDs (RFC 8794 §11, RFC 9559 §5.1) ---------------------------------------

const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Void: 0xec,
  CRC32: 0xbf,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Info: 0x1549a966,
  Tracks: 0x1654ae6b,
  Cluster: 0x1f43b675,
  Cues: 0x1c53bb6b,
  Chapters: 0x1043a770,
  Tags: 0x1254c367,
  Attachments: 0x1941a469,
  Tag: 0x7373,
  SimpleTag: 0x67c8,
  TagName: 0x45a3,
  TagString: 0x4487,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  ReferenceBlock: 0xfb,
} as const;

// ---- generating valid streams ----------------------------------------------------

interface Limits {
  payload: number;
  children: number;
  depth: number;
  /** Deepest SimpleTag nesting. */
  tagDepth: number;
}
const SMALL: Limits = { payload: 12, children: 3, depth: 3, tagDepth: 8 };
const NORMAL: Limits = { payload: 600, children: 6, depth: 5, tagDepth: 400 };

function payloadArb(limits: Limits): fc.Arbitrary<Buffer> {
  return fc
    .oneof({ arbitrary: fc.uint8Array({ maxLength: 16 }), weight: 6 }, { arbitrary: fc.uint8Array({ maxLength: limits.payload }), weight: 1 })
    .map((b) => Buffer.from(b));
}

/** A tree of plain elements: masters of masters down to binary leaves. */
function treeArb(limits: Limits): fc.Arbitrary<Buffer> {
  const { node } = fc.letrec<{ node: Buffer }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', maxDepth: limits.depth },
      fc.tuple(plainIdArb, payloadArb(limits), extraArb).map(([id, body, extra]) => el(id, body, extra)),
      fc
        .tuple(plainIdArb, fc.array(tie('node'), { maxLength: limits.children }), extraArb)
        .map(([id, children, extra]) => el(id, Buffer.concat(children), extra)),
    ),
  }));
  return node;
}

/** Tags > Tag > SimpleTag > SimpleTag > … (SimpleTag nests, RFC 9559 §5.1.8.1.2), `depth` deep. */
function deepTagsArb(limits: Limits): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.integer({ min: 1, max: limits.tagDepth }), extraArb).map(([depth, extra]) => {
    let inner = el(ID.TagString, Buffer.from('v'));
    for (let i = 0; i < depth; i++) inner = el(ID.SimpleTag, Buffer.concat([el(ID.TagName, Buffer.from('n')), inner]), extra);
    return el(ID.Tags, el(ID.Tag, inner), extra);
  });
}

const EBML_CHILDREN = [
  el(ID.EBMLVersion, [1]),
  el(ID.EBMLReadVersion, [1]),
  el(ID.EBMLMaxIDLength, [4]),
  el(ID.EBMLMaxSizeLength, [8]),
  el(ID.DocTypeVersion, [4]),
  el(ID.DocTypeReadVersion, [2]),
  el(ID.Void, [0, 0]),
];

interface EbmlHeader {
  bytes: Buffer;
  docType: string;
}

/** The EBML header: its children in any order, DocType among them, maybe zero-padded (RFC 8794 §7.4). */
const ebmlArb: fc.Arbitrary<EbmlHeader> = fc
  .tuple(fc.constantFrom('webm', 'matroska'), fc.nat(3), fc.shuffledSubarray(EBML_CHILDREN), fc.nat(), extraArb, extraArb)
  .map(([docType, pad, others, at, extra, docTypeExtra]) => {
    const docTypeElement = el(ID.DocType, Buffer.concat([Buffer.from(docType), Buffer.alloc(pad)]), docTypeExtra);
    const children = [...others];
    children.splice(at % (children.length + 1), 0, docTypeElement);
    return { bytes: el(ID.EBML, Buffer.concat(children), extra), docType };
  });

/** A Cluster child: Timestamp, SimpleBlock, BlockGroup, Void or any plain element. */
function clusterChildArb(limits: Limits): fc.Arbitrary<Buffer> {
  const frame = payloadArb(limits);
  const blockHead = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: -0x8000, max: 0x7fff }), fc.nat(255)).map(([track, rel, flags]) => {
    const head = Buffer.alloc(4);
    head[0] = 0x80 | track; // track number, 1-byte VINT
    head.writeInt16BE(rel, 1);
    head[3] = flags;
    return head;
  });
  return fc.oneof(
    fc.tuple(fc.uint8Array({ maxLength: 8 }), extraArb).map(([value, extra]) => el(ID.Timestamp, value, extra)),
    fc.tuple(blockHead, frame, extraArb).map(([head, data, extra]) => el(ID.SimpleBlock, Buffer.concat([head, data]), extra)),
    fc
      .tuple(blockHead, frame, fc.boolean(), fc.array(treeArb(limits), { maxLength: 2 }), extraArb)
      .map(([head, data, ref, more, extra]) => {
        const children = [el(ID.Block, Buffer.concat([head, data])), ...(ref ? [el(ID.ReferenceBlock, [0xff])] : []), ...more];
        return el(ID.BlockGroup, Buffer.concat(children), extra);
      }),
    frame.map((pad) => el(ID.Void, pad)),
    treeArb(limits),
  );
}

/**
 * A level-1 element. `plain` ones (Void, CRC-32, any non-level-1 ID) are
 * skipped, except right after an unknown-size Cluster, which they join.
 */
type Level1 =
  | { kind: 'header'; id: number; bytes: Buffer }
  | { kind: 'skipped'; bytes: Buffer }
  | { kind: 'plain'; bytes: Buffer }
  | { kind: 'cluster'; unknown: boolean; bytes: Buffer };

function level1Arb(limits: Limits): fc.Arbitrary<Level1> {
  const cluster = fc
    .tuple(fc.boolean(), fc.integer({ min: 1, max: 8 }), fc.array(clusterChildArb(limits), { maxLength: limits.children }), extraArb)
    .map(([unknown, length, children, extra]): Level1 => {
      const body = Buffer.concat(children);
      const size = unknown ? unknownSize(length) : sizeVint(body.length, extra);
      return { kind: 'cluster', unknown, bytes: Buffer.concat([idBytes(ID.Cluster), size, body]) };
    });
  const header = fc
    .tuple(fc.constantFrom(ID.Info, ID.Tracks, ID.Chapters, ID.Tags, ID.Attachments), fc.array(treeArb(limits), { maxLength: limits.children }), extraArb)
    .map(([id, children, extra]): Level1 => ({ kind: 'header', id, bytes: el(id, Buffer.concat(children), extra) }));
  const deepTags = deepTagsArb(limits).map((bytes): Level1 => ({ kind: 'header', id: ID.Tags, bytes }));
  const skipped = fc
    .tuple(fc.constantFrom(ID.SeekHead, ID.Cues), fc.array(treeArb(limits), { maxLength: limits.children }), extraArb)
    .map(([id, children, extra]): Level1 => ({ kind: 'skipped', bytes: el(id, Buffer.concat(children), extra) }));
  const plain = fc
    .tuple(fc.oneof(fc.constantFrom(ID.Void, ID.CRC32), plainIdArb), payloadArb(limits), extraArb)
    .map(([id, body, extra]): Level1 => ({ kind: 'plain', bytes: el(id, body, extra) }));
  return fc.oneof(
    { arbitrary: cluster, weight: 6 },
    { arbitrary: header, weight: 3 },
    { arbitrary: deepTags, weight: 1 },
    { arbitrary: skipped, weight: 1 },
    { arbitrary: plain, weight: 2 },
  );
}

interface SegmentModel {
  unknown: boolean;
  /** VINT length of an unknown size, or extra bytes of a known one. */
  sizeLength: number;
  children: Level1[];
  /** Top-level elements skipped after a known-size Segment. */
  trailing: Buffer[];
}

function segmentArb(limits: Limits): fc.Arbitrary<SegmentModel> {
  return fc.record({
    unknown: fc.boolean(),
    sizeLength: fc.integer({ min: 1, max: 8 }),
    children: fc.array(level1Arb(limits), { maxLength: limits.children + 2 }),
    trailing: fc.array(
      fc.tuple(fc.oneof(fc.constantFrom(ID.Void, ID.CRC32), plainIdArb), payloadArb(limits)).map(([id, body]) => el(id, body)),
      { maxLength: 2 },
    ),
  });
}

interface Generated {
  bytes: Buffer;
  events: ScanEvent[];
}

/** Writes the documents back to back and lists the events the scanner must give. */
function build(docs: Array<{ ebml: EbmlHeader; segments: SegmentModel[] }>): Generated {
  const parts: Buffer[] = [];
  const events: ScanEvent[] = [];
  for (const doc of docs) {
    parts.push(doc.ebml.bytes);
    events.push({ kind: 'ebml', bytes: doc.ebml.bytes, docType: doc.ebml.docType });
    for (const segment of doc.segments) {
      const body = Buffer.concat(segment.children.map((c) => c.bytes));
      const size = segment.unknown ? unknownSize(segment.sizeLength) : sizeVint(body.length, segment.sizeLength - 1);
      parts.push(idBytes(ID.Segment), size, body);
      events.push({ kind: 'segment', unknownSize: segment.unknown });
      let open: Buffer[] | undefined; // an unknown-size Cluster and the plain elements it took in
      const close = (): void => {
        if (open) events.push({ kind: 'cluster', bytes: Buffer.concat(open) });
        open = undefined;
      };
      for (const child of segment.children) {
        if (open && child.kind === 'plain') {
          open.push(child.bytes);
          continue;
        }
        close();
        if (child.kind === 'header') events.push({ kind: 'element', id: child.id, bytes: child.bytes });
        if (child.kind === 'cluster' && child.unknown) open = [child.bytes];
        if (child.kind === 'cluster' && !child.unknown) events.push({ kind: 'cluster', bytes: child.bytes });
      }
      close();
      // After an unknown-size Segment these would be its children.
      if (!segment.unknown) parts.push(...segment.trailing);
    }
  }
  return { bytes: Buffer.concat(parts), events };
}

function streamArb(limits: Limits, maxDocs: number): fc.Arbitrary<Generated> {
  const doc = fc.record({ ebml: ebmlArb, segments: fc.array(segmentArb(limits), { maxLength: 2 }) });
  return fc.array(doc, { minLength: 1, maxLength: maxDocs }).map(build);
}

// ---- running the scanner ----------------------------------------------------------

interface Outcome {
  /** Every event returned before the end or the error. */
  events: ScanEvent[];
  /** For each event, how many bytes had been pushed when it was returned. */
  pushedBy: number[];
  error?: unknown;
  largestAllocation: number;
}

function scan(chunks: Buffer[], options?: ScannerOptions): Outcome {
  const scanner = new MatroskaScanner(options);
  const events: ScanEvent[] = [];
  let error: unknown;
  let largest = 0;
  let pushed = 0;
  /** Calls the scanner; false once it threw. */
  const pushedBy: number[] = [];
  const call = (fn: () => ScanEvent[]): boolean => {
    largest = Math.max(
      largest,
      largestAllocation(() => {
        try {
          events.push(...fn());
        } catch (err) {
          error = err;
        }
      }),
    );
    while (pushedBy.length < events.length) pushedBy.push(pushed);
    return error === undefined;
  };
  for (const chunk of chunks) {
    pushed += chunk.length;
    if (!call(() => scanner.push(chunk))) break;
    assert.equal(scanner.bytesIn, pushed, 'bytesIn counts every byte pushed');
  }
  if (error === undefined) call(() => scanner.end());
  if (error !== undefined) {
    // A dead scanner stays dead with the same error.
    assert.throws(() => scanner.push(Buffer.from([0x1a])), (err: unknown) => err === error);
    assert.throws(() => scanner.end(), (err: unknown) => err === error);
  }
  const outcome = { events, pushedBy, largestAllocation: largest };
  return error === undefined ? outcome : { ...outcome, error };
}

/**
 * Events carry bytes that are slices of the input, in order, never
 * overlapping, each in its own ArrayBuffer, and already pushed when returned.
 */
function assertSlicesOfInput(input: Buffer, outcome: Outcome): void {
  let cursor = 0;
  for (const [i, event] of outcome.events.entries()) {
    if (event.kind === 'segment') continue;
    const at = input.indexOf(event.bytes, cursor);
    assert.ok(at >= 0 && event.bytes.length > 0, `a ${event.kind} of ${event.bytes.length} bytes that is not in the input after byte ${cursor}`);
    assert.ok(at + event.bytes.length <= outcome.pushedBy[i]!, `a ${event.kind} returned before its last byte was pushed`);
    assert.equal(event.bytes.byteOffset, 0);
    assert.equal(event.bytes.buffer.byteLength, event.bytes.length, 'emitted bytes own their ArrayBuffer');
    cursor = at + event.bytes.length;
  }
}

function assertTyped(outcome: Outcome): void {
  if (outcome.error !== undefined) assert.ok(isTypedError(outcome.error, SCANNER_ERRORS), `untyped error: ${String(outcome.error)}`);
}

/** A declared size is never allocated: the buffer grows only with the bytes that arrived. */
function assertBoundedAllocation(outcome: Outcome, input: Buffer): void {
  const bound = WINDOW_INITIAL + 4 * input.length;
  assert.ok(outcome.largestAllocation <= bound, `allocated ${outcome.largestAllocation} bytes for ${input.length} bytes of input`);
}

function describeError(outcome: Outcome): string | undefined {
  if (outcome.error === undefined) return undefined;
  const err = outcome.error as { code?: string; message?: string };
  return `${err.code}: ${err.message}`;
}

/** The error without the hex dump of the bytes at hand, which shows fewer bytes when fewer have arrived. */
function comparable(outcome: Outcome): string | undefined {
  return describeError(outcome)?.replace(/[0-9a-f]{2}( [0-9a-f]{2}){0,3}\)/g, '…)');
}

// ---- properties -------------------------------------------------------------------

test('valid streams give the expected events whatever the chunking', (t) => {
  checkProperty(
    t,
    fc.property(streamArb(NORMAL, 3), chunkingArb, (stream, chunking) => {
      const whole = scan([stream.bytes]);
      assert.equal(whole.error, undefined, describeError(whole));
      assert.deepEqual(whole.events, stream.events);
      const chunked = scan(split(stream.bytes, chunking));
      assert.equal(chunked.error, undefined, describeError(chunked));
      assert.deepEqual(chunked.events, stream.events);
      assertSlicesOfInput(stream.bytes, chunked);
      assertBoundedAllocation(chunked, stream.bytes);
    }),
    250,
  );
});

test('every truncation of a valid stream: events so far are right; end() says truncated or closes a live Cluster', (t) => {
  checkProperty(
    t,
    fc.property(streamArb(SMALL, 2), (stream) => {
      const input = stream.bytes;
      for (let length = 0; length < input.length; length++) {
        const scanner = new MatroskaScanner();
        const events = scanner.push(input.subarray(0, length)); // a valid prefix only ever needs more
        assert.deepEqual(events, stream.events.slice(0, events.length), `cut at ${length}`);
        let last: ScanEvent[];
        try {
          last = scanner.end();
        } catch (err) {
          assert.ok(err instanceof TruncatedStreamError, `cut at ${length}: ${String(err)}`);
          continue;
        }
        if (last.length === 0) continue; // cut between elements
        assert.equal(last.length, 1);
        const closed = last[0]!;
        const expected = stream.events[events.length];
        assert.ok(closed.kind === 'cluster' && expected?.kind === 'cluster', `cut at ${length}: ${closed.kind}`);
        assert.ok(closed.bytes.equals(expected.bytes.subarray(0, closed.bytes.length)), `cut at ${length}: Cluster bytes`);
      }
    }),
    40,
    0.1,
  );
});

test('mutated streams: typed errors only, the same outcome whatever the chunking, bytes only from the input', (t) => {
  const limitsArb = fc.option(fc.record({ maxElementSize: fc.integer({ min: 1, max: 400 }), maxClusterSize: fc.integer({ min: 1, max: 400 }) }), {
    nil: undefined,
  });
  checkProperty(
    t,
    fc.property(streamArb(NORMAL, 2), fc.array(mutationArb, { minLength: 1, maxLength: 6 }), chunkingArb, limitsArb, (stream, mutations, chunking, options) => {
      const input = mutate(stream.bytes, mutations);
      const whole = scan([input], options);
      const chunked = scan(split(input, chunking), options);
      for (const outcome of [whole, chunked]) {
        assertTyped(outcome);
        assertSlicesOfInput(input, outcome);
        assertBoundedAllocation(outcome, input);
      }
      assert.equal(comparable(chunked), comparable(whole), 'same error whatever the chunking');
      if (whole.error === undefined) assert.deepEqual(chunked.events, whole.events);
    }),
    300,
  );
});

test('declared sizes up to 2^56-1 and unknown sizes with few bytes present: typed errors only, nothing allocated from the size', (t) => {
  const prefixArb = fc.constantFrom(
    Buffer.alloc(0), // top level, before any EBML header
    Buffer.concat([el(ID.EBML, el(ID.DocType, Buffer.from('webm')))]), // top level
    Buffer.concat([el(ID.EBML, el(ID.DocType, Buffer.from('webm'))), idBytes(ID.Segment), unknownSize(8)]), // level 1
    Buffer.concat([el(ID.EBML, el(ID.DocType, Buffer.from('webm'))), idBytes(ID.Segment), unknownSize(1), idBytes(ID.Cluster), unknownSize(8)]), // in a Cluster
    Buffer.concat([el(ID.EBML, el(ID.DocType, Buffer.from('webm'))), idBytes(ID.Segment), vint(2n ** 50n, 8)]), // in a huge known-size Segment
  );
  const idArb = fc.oneof(
    fc.constantFrom(ID.EBML, ID.Segment, ID.Cluster, ID.Info, ID.Tracks, ID.Tags, ID.SeekHead, ID.Cues, ID.Void, ID.SimpleBlock, ID.BlockGroup),
    plainIdArb,
  );
  const sizeArb = fc.oneof(
    fc.tuple(fc.bigInt(0n, 2n ** 56n - 1n), fc.constant(8)), // any 8-byte size, all ones ("unknown") included
    fc.tuple(fc.bigInt(2n ** 20n, 2n ** 26n), fc.constant(4)), // 1–64 MiB: under and over the default limits
    fc.tuple(fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 56n - 2n, 2n ** 56n - 1n), fc.constant(8)),
    fc.integer({ min: 1, max: 8 }).map((length) => [(1n << BigInt(7 * length)) - 1n, length] as const), // unknown, any length
  );
  checkProperty(
    t,
    fc.property(prefixArb, idArb, sizeArb, fc.uint8Array({ maxLength: 64 }), chunkingArb, (prefix, id, [size, length], tail, chunking) => {
      const input = Buffer.concat([prefix, idBytes(id), vint(size, length), tail]);
      const outcome = scan(split(input, chunking));
      assertTyped(outcome);
      assertBoundedAllocation(outcome, input);
      assertSlicesOfInput(input, outcome);
    }),
    300,
  );
});

test('garbage, alone or after a valid header: typed errors only', (t) => {
  const prefixArb = fc.constantFrom(
    Buffer.alloc(0),
    el(ID.EBML, el(ID.DocType, Buffer.from('matroska'))),
    Buffer.concat([el(ID.EBML, el(ID.DocType, Buffer.from('webm'))), idBytes(ID.Segment), unknownSize(8)]),
    Buffer.concat([el(ID.EBML, el(ID.DocType, Buffer.from('webm'))), idBytes(ID.Segment), unknownSize(8), idBytes(ID.Cluster), unknownSize(8)]),
  );
  checkProperty(
    t,
    fc.property(prefixArb, fc.uint8Array({ maxLength: 300 }), chunkingArb, (prefix, garbage, chunking) => {
      const input = Buffer.concat([prefix, garbage]);
      const outcome = scan(split(input, chunking));
      assertTyped(outcome);
      assertBoundedAllocation(outcome, input);
      assertSlicesOfInput(input, outcome);
    }),
    200,
  );
});

test('elements larger than the first buffer, under random chunking', (t) => {
  // Payloads past 256 KiB make the scanner's buffer grow, move and shrink again.
  const bigArb = fc.tuple(fc.integer({ min: 200_000, max: 700_000 }), fc.nat(255), fc.boolean(), fc.constantFrom(ID.Cluster, ID.Tracks, ID.Cues));
  checkProperty(
    t,
    fc.property(ebmlArb, fc.array(bigArb, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 40 }), (ebml, bigs, cuts) => {
      const children: Level1[] = [];
      for (const [length, fill, unknown, id] of bigs) {
        const body = el(ID.Void, Buffer.alloc(length, fill)); // a valid child of any master
        if (id === ID.Cluster) {
          const size = unknown ? unknownSize(8) : sizeVint(body.length, 0);
          children.push({ kind: 'cluster', unknown, bytes: Buffer.concat([idBytes(id), size, body]) });
        } else {
          children.push(id === ID.Cues ? { kind: 'skipped', bytes: el(id, body) } : { kind: 'header', id, bytes: el(id, body) });
        }
        // Small Clusters after each big one let the buffer shrink.
        for (let i = 0; i < 3; i++) children.push({ kind: 'cluster', unknown: false, bytes: el(ID.Cluster, el(ID.Timestamp, [i])) });
      }
      const stream = build([{ ebml, segments: [{ unknown: true, sizeLength: 8, children, trailing: [] }] }]);
      const outcome = scan(split(stream.bytes, cuts));
      assert.equal(outcome.error, undefined, describeError(outcome));
      assert.deepEqual(outcome.events, stream.events);
    }),
    8,
    0.02,
  );
});
