/**
 * Property-based tests of MatroskaScanner: generated valid streams, their
 * truncations, mutations, huge declared sizes and garbage. Each Cluster comes
 * out as its start, its children one by one and its end, whatever the
 * chunking, holding no more than the child in progress. The EBML writer
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
/** An ID (at most 4 bytes) and a size (at most 8) being read: held beside a whole element at most. */
const HEADER_BYTES = 12;

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

/** IDs for a Cluster's direct children that are no block: anything but a second Timestamp (RFC 9559 §5.1.3.1). */
const childIdArb = plainIdArb.filter((id) => id !== ID.Timestamp);

/** A Cluster child as the scanner must emit it: its ID, and its bytes as written. */
interface Child {
  id: number;
  bytes: Buffer;
}

/** A Cluster child other than its Timestamp: SimpleBlock, BlockGroup, Void or any plain element. */
function clusterChildArb(limits: Limits): fc.Arbitrary<Child> {
  const frame = payloadArb(limits);
  const blockHead = fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: -0x8000, max: 0x7fff }), fc.nat(255)).map(([track, rel, flags]) => {
    const head = Buffer.alloc(4);
    head[0] = 0x80 | track; // track number, 1-byte VINT
    head.writeInt16BE(rel, 1);
    head[3] = flags;
    return head;
  });
  const body = fc.oneof(frame, fc.array(treeArb(limits), { maxLength: limits.children }).map((c) => Buffer.concat(c)));
  return fc.oneof(
    fc.tuple(blockHead, frame, extraArb).map(([head, data, extra]): Child => ({ id: ID.SimpleBlock, bytes: el(ID.SimpleBlock, Buffer.concat([head, data]), extra) })),
    fc
      .tuple(blockHead, frame, fc.boolean(), fc.array(treeArb(limits), { maxLength: 2 }), extraArb)
      .map(([head, data, ref, more, extra]): Child => {
        const children = [el(ID.Block, Buffer.concat([head, data])), ...(ref ? [el(ID.ReferenceBlock, [0xff])] : []), ...more];
        return { id: ID.BlockGroup, bytes: el(ID.BlockGroup, Buffer.concat(children), extra) };
      }),
    frame.map((pad): Child => ({ id: ID.Void, bytes: el(ID.Void, pad) })),
    fc.tuple(childIdArb, body, extraArb).map(([id, data, extra]): Child => ({ id, bytes: el(id, data, extra) })),
  );
}

/** An unsigned integer's bytes (RFC 8794 §7.2): 0–8 of them, leading zeros allowed. */
function uintBytes(value: number, pad: number): Buffer {
  const hex = value === 0 ? '' : value.toString(16);
  const bytes = Buffer.from(hex.padStart(Math.ceil(hex.length / 2) * 2, '0'), 'hex');
  return Buffer.concat([Buffer.alloc(Math.min(pad, 8 - bytes.length)), bytes]);
}

interface Timestamp {
  value: number;
  bytes: Buffer;
}

/** A Cluster Timestamp element of any value the scanner accepts: below 2^53. */
const timestampArb: fc.Arbitrary<Timestamp> = fc
  .tuple(fc.oneof(fc.nat(100_000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), fc.nat(7), extraArb)
  .map(([value, pad, extra]) => ({ value, bytes: el(ID.Timestamp, uintBytes(value, pad), extra) }));

/**
 * A level-1 element. `plain` ones (Void, CRC-32, any non-level-1 ID) are
 * skipped, except right after an unknown-size Cluster, which they join.
 */
type Level1 =
  | { kind: 'header'; id: number; bytes: Buffer }
  | { kind: 'skipped'; bytes: Buffer }
  | { kind: 'plain'; id: number; bytes: Buffer }
  | {
      kind: 'cluster';
      unknown: boolean;
      bytes: Buffer;
      timestamp: number;
      /** Its children but the Timestamp, in order. */
      children: Child[];
      /** Bytes from its body's start to its Timestamp's end: held until the Timestamp is whole. */
      beforeTimestamp: number;
    };

/** A Cluster with its Timestamp (mandatory, exactly one, RFC 9559 §5.1.3.1) at child index `at`. */
function makeCluster(timestamp: Timestamp, children: Child[], at: number, unknown: boolean, sizeLength: number, extra: number): Level1 {
  const parts = children.map((c) => c.bytes);
  const index = at % (parts.length + 1);
  parts.splice(index, 0, timestamp.bytes);
  const body = Buffer.concat(parts);
  const size = unknown ? unknownSize(sizeLength) : sizeVint(body.length, extra);
  const beforeTimestamp = parts.slice(0, index + 1).reduce((n, b) => n + b.length, 0);
  return { kind: 'cluster', unknown, bytes: Buffer.concat([idBytes(ID.Cluster), size, body]), timestamp: timestamp.value, children, beforeTimestamp };
}

function clusterArb(limits: Limits, maxChildren = limits.children): fc.Arbitrary<Level1> {
  return fc
    .tuple(timestampArb, fc.array(clusterChildArb(limits), { maxLength: maxChildren }), fc.nat(), fc.boolean(), fc.integer({ min: 1, max: 8 }), extraArb)
    .map(([timestamp, children, at, unknown, length, extra]) => makeCluster(timestamp, children, at, unknown, length, extra));
}

function level1Arb(limits: Limits): fc.Arbitrary<Level1> {
  const header = fc
    .tuple(fc.constantFrom(ID.Info, ID.Tracks, ID.Chapters, ID.Tags, ID.Attachments), fc.array(treeArb(limits), { maxLength: limits.children }), extraArb)
    .map(([id, children, extra]): Level1 => ({ kind: 'header', id, bytes: el(id, Buffer.concat(children), extra) }));
  const deepTags = deepTagsArb(limits).map((bytes): Level1 => ({ kind: 'header', id: ID.Tags, bytes }));
  const skipped = fc
    .tuple(fc.constantFrom(ID.SeekHead, ID.Cues), fc.array(treeArb(limits), { maxLength: limits.children }), extraArb)
    .map(([id, children, extra]): Level1 => ({ kind: 'skipped', bytes: el(id, Buffer.concat(children), extra) }));
  const plain = fc
    .tuple(fc.oneof(fc.constantFrom(ID.Void, ID.CRC32), childIdArb), payloadArb(limits), extraArb)
    .map(([id, body, extra]): Level1 => ({ kind: 'plain', id, bytes: el(id, body, extra) }));
  return fc.oneof(
    { arbitrary: clusterArb(limits), weight: 6 },
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
  /**
   * The most bytes the scanner needs at once: the largest element it emits
   * whole (EBML header, header element, Cluster child) or the run of
   * children before a Cluster's Timestamp. Held with it at most: one ID and
   * size being read.
   */
  largestUnit: number;
  /** The same within Clusters only: a child, or a run up to a Timestamp; what maxChildSize bounds. */
  largestClusterUnit: number;
}

type Doc = { ebml: EbmlHeader; segments: SegmentModel[] };

/** Writes the documents back to back and lists the events the scanner must give. */
function build(docs: Doc[]): Generated {
  const parts: Buffer[] = [];
  let offset = 0;
  const write = (...bytes: Buffer[]): void => {
    parts.push(...bytes);
    for (const b of bytes) offset += b.length;
  };
  const events: ScanEvent[] = [];
  let largestUnit = 0;
  let largestClusterUnit = 0;
  const held = (n: number, inCluster = false): void => {
    largestUnit = Math.max(largestUnit, n);
    if (inCluster) largestClusterUnit = Math.max(largestClusterUnit, n);
  };
  for (const doc of docs) {
    events.push({ kind: 'ebml', bytes: doc.ebml.bytes, docType: doc.ebml.docType });
    held(doc.ebml.bytes.length);
    write(doc.ebml.bytes);
    for (const segment of doc.segments) {
      const body = Buffer.concat(segment.children.map((c) => c.bytes));
      const size = segment.unknown ? unknownSize(segment.sizeLength) : sizeVint(body.length, segment.sizeLength - 1);
      write(idBytes(ID.Segment), size);
      events.push({ kind: 'segment', unknownSize: segment.unknown });
      let open = false; // an unknown-size Cluster that plain elements join
      const close = (): void => {
        if (open) events.push({ kind: 'cluster-end' });
        open = false;
      };
      for (const child of segment.children) {
        const at = offset;
        write(child.bytes);
        if (open && child.kind === 'plain') {
          events.push({ kind: 'cluster-child', id: child.id, bytes: child.bytes });
          held(child.bytes.length, true);
          continue;
        }
        close();
        if (child.kind === 'header') {
          events.push({ kind: 'element', id: child.id, bytes: child.bytes });
          held(child.bytes.length);
        } else if (child.kind === 'cluster') {
          events.push({ kind: 'cluster-start', offset: at, timestamp: child.timestamp });
          for (const c of child.children) {
            events.push({ kind: 'cluster-child', id: c.id, bytes: c.bytes });
            held(c.bytes.length, true);
          }
          held(child.beforeTimestamp, true);
          if (child.unknown) open = true;
          else events.push({ kind: 'cluster-end' });
        }
      }
      close(); // by the end of a known-size Segment, a new Segment or EBML header, or end()
      // After an unknown-size Segment these would be its children.
      if (!segment.unknown) write(...segment.trailing);
    }
  }
  return { bytes: Buffer.concat(parts), events, largestUnit, largestClusterUnit };
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
  /** The most bytes the scanner held after any push. */
  largestHeld: number;
  /** What it held after a successful end(); -1 when it threw. */
  heldAtEnd: number;
}

function scan(chunks: Buffer[], options?: ScannerOptions): Outcome {
  const scanner = new MatroskaScanner(options);
  const events: ScanEvent[] = [];
  let error: unknown;
  let largest = 0;
  let largestHeld = 0;
  let pushed = 0;
  const pushedBy: number[] = [];
  /** Calls the scanner; false once it threw. */
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
    assert.ok(scanner.bytesHeld <= pushed, `holds ${scanner.bytesHeld} bytes of the ${pushed} pushed`);
    largestHeld = Math.max(largestHeld, scanner.bytesHeld);
  }
  if (error === undefined) call(() => scanner.end());
  if (error !== undefined) {
    // A dead scanner stays dead with the same error.
    assert.throws(() => scanner.push(Buffer.from([0x1a])), (err: unknown) => err === error);
    assert.throws(() => scanner.end(), (err: unknown) => err === error);
  }
  const outcome = { events, pushedBy, largestAllocation: largest, largestHeld, heldAtEnd: error === undefined ? scanner.bytesHeld : -1 };
  return error === undefined ? outcome : { ...outcome, error };
}

/**
 * Events come in input order and carry bytes that are slices of the input,
 * never overlapping, already pushed when returned, and still intact now that
 * every chunk went through the scanner's buffer (a copy, not a view of it).
 * The EBML header and header elements own their ArrayBuffer; a Cluster starts
 * where its ID is.
 */
function assertSlicesOfInput(input: Buffer, outcome: Outcome): void {
  let cursor = 0;
  for (const [i, event] of outcome.events.entries()) {
    const pushed = outcome.pushedBy[i]!;
    if (event.kind === 'segment' || event.kind === 'cluster-end') continue;
    if (event.kind === 'cluster-start') {
      const at = event.offset;
      assert.ok(at >= cursor && at + 4 <= pushed, `a Cluster at byte ${at}, before byte ${cursor} or not yet pushed (${pushed})`);
      assert.equal(input.readUInt32BE(at), ID.Cluster, `no Cluster ID at byte ${at}`);
      cursor = at + 4;
      continue;
    }
    const at = input.indexOf(event.bytes, cursor);
    assert.ok(at >= 0 && event.bytes.length > 0, `a ${event.kind} of ${event.bytes.length} bytes that is not in the input after byte ${cursor}`);
    assert.ok(at + event.bytes.length <= pushed, `a ${event.kind} returned before its last byte was pushed`);
    if (event.kind !== 'cluster-child') {
      assert.equal(event.bytes.byteOffset, 0);
      assert.equal(event.bytes.buffer.byteLength, event.bytes.length, 'emitted bytes own their ArrayBuffer');
    }
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
      assert.equal(chunked.heldAtEnd, 0, 'nothing held once a valid stream ended');
    }),
    250,
  );
});

/** Streams of Clusters only, with many children: holding a whole Cluster, or a child once emitted, goes past the bounds. */
const clusterStreamArb = fc
  .tuple(ebmlArb, fc.boolean(), fc.array(clusterArb({ ...NORMAL, children: 12 }), { minLength: 1, maxLength: 4 }))
  .map(([ebml, unknown, clusters]) => build([{ ebml, segments: [{ unknown, sizeLength: 8, children: clusters, trailing: [] }] }]));

test('only the Cluster child in progress is held, never the Cluster', (t) => {
  checkProperty(
    t,
    fc.property(clusterStreamArb, chunkingArb, (stream, chunking) => {
      const outcome = scan(split(stream.bytes, chunking));
      assert.equal(outcome.error, undefined, describeError(outcome));
      assert.deepEqual(outcome.events, stream.events);
      const bound = stream.largestUnit + HEADER_BYTES;
      assert.ok(outcome.largestHeld <= bound, `held ${outcome.largestHeld} bytes; the largest child (or run before a Timestamp) is ${stream.largestUnit}`);
    }),
    200,
  );
});

test('maxChildSize: a child, or the children before a Timestamp, past it is refused, and no more than it is held', (t) => {
  checkProperty(
    t,
    fc.property(clusterStreamArb, chunkingArb, fc.integer({ min: 1, max: 700 }), (stream, chunking, maxChildSize) => {
      const outcome = scan(split(stream.bytes, chunking), { maxChildSize });
      if (stream.largestClusterUnit > maxChildSize) {
        assert.ok(outcome.error instanceof ElementTooLargeError, `${stream.largestClusterUnit} bytes over a limit of ${maxChildSize}: ${describeError(outcome)}`);
      } else {
        assert.equal(outcome.error, undefined, describeError(outcome));
        assert.deepEqual(outcome.events, stream.events);
      }
      // The EBML header is held whole under its own limit.
      const ebml = stream.events[0]!.kind === 'ebml' ? stream.events[0]!.bytes.length : 0;
      const bound = Math.max(maxChildSize, ebml) + HEADER_BYTES;
      assert.ok(outcome.largestHeld <= bound, `held ${outcome.largestHeld} bytes under a limit of ${maxChildSize}`);
    }),
    200,
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
        const next = stream.events[events.length];
        let last: ScanEvent[];
        try {
          last = scanner.end();
        } catch (err) {
          // An unknown-size Cluster cut before its Timestamp ends without one.
          const noTimestamp = err instanceof CorruptStreamError && /has no Timestamp/.test(err.message) && next?.kind === 'cluster-start';
          assert.ok(err instanceof TruncatedStreamError || noTimestamp, `cut at ${length}: ${String(err)}`);
          continue;
        }
        // Cut between the children of an unknown-size Cluster: it ends there.
        const inCluster = next?.kind === 'cluster-child' || next?.kind === 'cluster-end';
        assert.deepEqual(last, inCluster ? [{ kind: 'cluster-end' }] : [], `cut at ${length}, before a ${next?.kind}`);
      }
    }),
    40,
    0.1,
  );
});

test('mutated streams: typed errors only, the same outcome whatever the chunking, bytes only from the input, bounded holding', (t) => {
  const limitsArb = fc.option(fc.record({ maxElementSize: fc.integer({ min: 1, max: 400 }), maxChildSize: fc.integer({ min: 1, max: 400 }) }), {
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
      if (options) {
        const bound = Math.max(options.maxElementSize, options.maxChildSize) + HEADER_BYTES;
        assert.ok(chunked.largestHeld <= bound, `held ${chunked.largestHeld} bytes with limits ${JSON.stringify(options)}`);
      }
      assert.equal(comparable(chunked), comparable(whole), 'same error whatever the chunking');
      if (whole.error === undefined) assert.deepEqual(chunked.events, whole.events);
    }),
    300,
  );
});

test('declared sizes up to 2^56-1 and unknown sizes with few bytes present: typed errors only, nothing allocated from the size', (t) => {
  const ebml = el(ID.EBML, el(ID.DocType, Buffer.from('webm')));
  const prefixArb = fc.constantFrom(
    Buffer.alloc(0), // top level, before any EBML header
    ebml, // top level
    Buffer.concat([ebml, idBytes(ID.Segment), unknownSize(8)]), // level 1
    Buffer.concat([ebml, idBytes(ID.Segment), unknownSize(1), idBytes(ID.Cluster), unknownSize(8)]), // in a Cluster, before its Timestamp
    Buffer.concat([ebml, idBytes(ID.Segment), unknownSize(1), idBytes(ID.Cluster), unknownSize(8), el(ID.Timestamp, [7])]), // in a Cluster, after it
    Buffer.concat([ebml, idBytes(ID.Segment), vint(2n ** 50n, 8)]), // in a huge known-size Segment
  );
  const idArb = fc.oneof(
    fc.constantFrom(ID.EBML, ID.Segment, ID.Cluster, ID.Info, ID.Tracks, ID.Tags, ID.SeekHead, ID.Cues, ID.Void, ID.SimpleBlock, ID.BlockGroup, ID.Timestamp),
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
      assert.ok(outcome.largestHeld <= input.length);
    }),
    300,
  );
});

test('garbage, alone or after a valid header: typed errors only', (t) => {
  const ebml = el(ID.EBML, el(ID.DocType, Buffer.from('webm')));
  const prefixArb = fc.constantFrom(
    Buffer.alloc(0),
    el(ID.EBML, el(ID.DocType, Buffer.from('matroska'))),
    Buffer.concat([ebml, idBytes(ID.Segment), unknownSize(8)]),
    Buffer.concat([ebml, idBytes(ID.Segment), unknownSize(8), idBytes(ID.Cluster), unknownSize(8)]),
    Buffer.concat([ebml, idBytes(ID.Segment), unknownSize(8), idBytes(ID.Cluster), unknownSize(8), el(ID.Timestamp, [1])]),
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
  const bigArb = fc.tuple(fc.integer({ min: 200_000, max: 700_000 }), fc.nat(255), fc.boolean(), fc.constantFrom(ID.Cluster, ID.Tracks, ID.Cues), fc.nat(1));
  checkProperty(
    t,
    fc.property(ebmlArb, fc.array(bigArb, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(), { maxLength: 40 }), (ebml, bigs, cuts) => {
      const children: Level1[] = [];
      for (const [length, fill, unknown, id, at] of bigs) {
        const body = el(ID.Void, Buffer.alloc(length, fill)); // a valid child of any master
        if (id === ID.Cluster) {
          // The big child before or after the Timestamp (held until it comes).
          children.push(makeCluster({ value: fill, bytes: el(ID.Timestamp, [fill]) }, [{ id: ID.Void, bytes: body }], at, unknown, 8, 0));
        } else {
          children.push(id === ID.Cues ? { kind: 'skipped', bytes: el(id, body) } : { kind: 'header', id, bytes: el(id, body) });
        }
        // Small Clusters after each big one let the buffer shrink.
        for (let i = 0; i < 3; i++) children.push(makeCluster({ value: i, bytes: el(ID.Timestamp, [i]) }, [], 0, false, 1, 0));
      }
      const stream = build([{ ebml, segments: [{ unknown: true, sizeLength: 8, children, trailing: [] }] }]);
      const outcome = scan(split(stream.bytes, cuts));
      assert.equal(outcome.error, undefined, describeError(outcome));
      assert.deepEqual(outcome.events, stream.events);
      assert.ok(outcome.largestHeld <= stream.largestUnit + HEADER_BYTES, `held ${outcome.largestHeld} bytes, largest unit ${stream.largestUnit}`);
    }),
    8,
    0.02,
  );
});
