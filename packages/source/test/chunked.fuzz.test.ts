/** Property-based tests of ChunkedDecoder: generated bodies, limits, truncations, mutations, huge sizes, garbage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkedDecoder, MAX_CHUNK_LINE, MAX_TRAILERS, type ChunkedResult } from '../src/inputs/chunked.js';
import { ChunkedEncodingError } from '../src/inputs/errors.js';
import { checkProperty, chunkingArb, isTypedError, largestAllocation, mutate, mutationArb, split } from '@mkvcast/shared/testing';

const TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// ---- generating valid bodies (RFC 9112 §7.1) ----------------------------------------------

const tokenArb = fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 8 });
const bwsArb = fc.constantFrom('', ' ', '\t', ' \t');
/** qdtext and quoted-pair (RFC 9110 §5.6.4), obs-text included. */
const quotedArb = fc
  .array(fc.oneof(fc.integer({ min: 0x23, max: 0x5b }), fc.integer({ min: 0x5d, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom(0x20, 0x09, 0x21)), { maxLength: 8 })
  .chain((codes) => fc.constant(`"${String.fromCharCode(...codes)}"`));

/** chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) */
const extArb = fc
  .array(fc.tuple(bwsArb, bwsArb, tokenArb, fc.option(fc.tuple(bwsArb, bwsArb, fc.oneof(tokenArb, quotedArb)), { nil: undefined })), { maxLength: 2 })
  .map((exts) => exts.map(([b1, b2, name, value]) => `${b1};${b2}${name}${value ? `${value[0]}=${value[1]}${value[2]}` : ''}`).join(''));

/** chunk-size in hex, any case, leading zeros allowed. */
function sizeLine(size: number, zeros: number, upper: boolean, ext: string): string {
  const hex = size.toString(16);
  return `${'0'.repeat(zeros)}${upper ? hex.toUpperCase() : hex}${ext}\r\n`;
}

const fieldValueArb = fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(0x09)).map((c) => String.fromCharCode(c)), maxLength: 30 });

interface BodyModel {
  bytes: Buffer;
  data: Buffer;
}

const bodyArb: fc.Arbitrary<BodyModel> = fc
  .record({
    chunks: fc.array(
      fc.record({
        data: fc.oneof({ arbitrary: fc.uint8Array({ minLength: 1, maxLength: 20 }), weight: 4 }, { arbitrary: fc.uint8Array({ minLength: 1, maxLength: 2000 }), weight: 1 }),
        zeros: fc.nat(3),
        upper: fc.boolean(),
        ext: extArb,
      }),
      { maxLength: 6 },
    ),
    lastZeros: fc.nat(3),
    lastExt: extArb,
    trailers: fc.array(fc.tuple(tokenArb, fieldValueArb), { maxLength: 3 }),
  })
  .map(({ chunks, lastZeros, lastExt, trailers }) => {
    const parts: Buffer[] = [];
    for (const c of chunks) parts.push(Buffer.from(sizeLine(c.data.length, c.zeros, c.upper, c.ext), 'latin1'), Buffer.from(c.data), Buffer.from('\r\n'));
    parts.push(Buffer.from(sizeLine(0, lastZeros, false, lastExt), 'latin1')); // last-chunk: "0" and more zeros
    for (const [name, value] of trailers) parts.push(Buffer.from(`${name}:${value}\r\n`, 'latin1'));
    parts.push(Buffer.from('\r\n'));
    return { bytes: Buffer.concat(parts), data: Buffer.concat(chunks.map((c) => c.data)) };
  });

// ---- decoding ------------------------------------------------------------------------

interface Outcome {
  /** Decoded data returned before the end or the error. */
  data: Buffer;
  done: boolean;
  /** Every byte returned as rest, from the push that finished and any after. */
  rest: Buffer;
  error?: unknown;
  largestAllocation: number;
}

/** Pushes every chunk; checks that data are non-empty views of the pushed bytes and that done, once set, stays. */
function decode(chunks: Buffer[]): Outcome {
  const decoder = new ChunkedDecoder();
  const data: Buffer[] = [];
  const rest: Buffer[] = [];
  let done = false;
  let error: unknown;
  let largest = 0;
  for (const chunk of chunks) {
    let result: ChunkedResult | undefined;
    largest = Math.max(
      largest,
      largestAllocation(() => {
        try {
          result = decoder.push(chunk);
        } catch (err) {
          error = err;
        }
      }),
    );
    if (!result) break;
    for (const piece of result.data) {
      assert.ok(piece.length > 0, 'no empty pieces');
      const inside = piece.byteOffset >= chunk.byteOffset && piece.byteOffset + piece.length <= chunk.byteOffset + chunk.length;
      assert.ok(piece.buffer === chunk.buffer && inside, 'a view of the pushed chunk');
    }
    assert.ok(!done || (result.done && result.data.length === 0), 'done stays done, with no more data');
    data.push(...result.data);
    if (result.done) rest.push(result.rest!);
    done = result.done;
    assert.equal(decoder.done, done);
  }
  if (error !== undefined) assert.throws(() => decoder.push(Buffer.from('0\r\n\r\n')), (err: unknown) => err === error, 'a failed decoder keeps failing');
  const outcome = { data: Buffer.concat(data), done, rest: Buffer.concat(rest), largestAllocation: largest };
  return error === undefined ? outcome : { ...outcome, error };
}

/** Only ChunkedEncodingError; nothing allocated (data are views); no more data than bytes pushed. */
function assertSafe(input: Buffer, outcome: Outcome): void {
  if (outcome.error !== undefined) {
    assert.ok(isTypedError(outcome.error, [ChunkedEncodingError]), `untyped error: ${String(outcome.error)}`);
    assert.equal((outcome.error as ChunkedEncodingError).code, 'MKV_ERR_BAD_CHUNKED');
  }
  assert.equal(outcome.largestAllocation, 0, 'no Buffer allocated');
  assert.ok(outcome.data.length + outcome.rest.length <= input.length);
}

function summary(outcome: Outcome): string {
  if (outcome.error !== undefined) return `error: ${(outcome.error as Error).message}`;
  return `${outcome.done ? 'done' : 'incomplete'}, data ${outcome.data.toString('hex')}, rest ${outcome.rest.toString('hex')}`;
}

// ---- properties ------------------------------------------------------------------------

test('valid bodies decode to their data whatever the chunking; the bytes after them come back as rest', (t) => {
  checkProperty(
    t,
    fc.property(bodyArb, fc.uint8Array({ maxLength: 20 }), chunkingArb, (body, after, chunking) => {
      const input = Buffer.concat([body.bytes, after]);
      for (const chunks of [[input], split(input, chunking)]) {
        const outcome = decode(chunks);
        assert.equal(outcome.error, undefined, String(outcome.error));
        assertSafe(input, outcome);
        assert.ok(outcome.done);
        assert.deepEqual(outcome.data, body.data);
        assert.deepEqual(outcome.rest, Buffer.from(after));
      }
    }),
    300,
  );
});

test('every truncation of a valid body waits for more, with the data so far', (t) => {
  checkProperty(
    t,
    fc.property(bodyArb, (body) => {
      for (let length = 0; length < body.bytes.length; length++) {
        const outcome = decode([body.bytes.subarray(0, length)]);
        assert.equal(summary(outcome).split(',')[0], 'incomplete', `cut at ${length}`);
        assert.ok(outcome.data.equals(body.data.subarray(0, outcome.data.length)), `cut at ${length}: data`);
      }
    }),
    100,
    0.2,
  );
});

test('size lines and trailer sections at their limits: accepted or refused alike whatever the chunking', (t) => {
  const limitArb = fc.record({
    lineDelta: fc.integer({ min: -3, max: 3 }),
    trailerDelta: fc.integer({ min: -3, max: 3 }),
    cuts: fc.array(fc.oneof(fc.nat(), fc.integer({ min: -MAX_TRAILERS - 8, max: -1 })), { maxLength: 12 }),
  });
  checkProperty(
    t,
    fc.property(limitArb, ({ lineDelta, trailerDelta, cuts }) => {
      // "1;" and padding make a size line of MAX_CHUNK_LINE + lineDelta bytes, CRLF not counted.
      const line = `1;${'x'.repeat(MAX_CHUNK_LINE + lineDelta - 2)}\r\n`;
      // One trailer field and the final CRLF make MAX_TRAILERS + trailerDelta bytes.
      const field = `X:${'t'.repeat(MAX_TRAILERS + trailerDelta - 6)}\r\n\r\n`;
      const input = Buffer.from(`${line}a\r\n0\r\n${field}`, 'latin1');
      const whole = decode([input]);
      const expected = lineDelta > 0 ? 'error: chunk-size line longer' : trailerDelta > 0 ? 'error: trailer section longer' : 'done, data 61, rest ';
      assert.ok(summary(whole).startsWith(expected), summary(whole));
      assert.equal(summary(decode(split(input, cuts.map((c) => (c < 0 ? input.length + c : c))))), summary(whole));
    }),
    100,
  );
});

test('mutated bodies: ChunkedEncodingError only, the same outcome whatever the chunking, no allocation', (t) => {
  checkProperty(
    t,
    fc.property(bodyArb, fc.array(mutationArb, { minLength: 1, maxLength: 6 }), chunkingArb, (body, mutations, chunking) => {
      const input = mutate(body.bytes, mutations);
      const whole = decode([input]);
      const chunked = decode(split(input, chunking));
      assertSafe(input, whole);
      assertSafe(input, chunked);
      assert.equal(summary(chunked), summary(whole), 'same outcome whatever the chunking');
    }),
    300,
  );
});

test('declared chunk sizes up to 2^64 with few bytes present: refused past 2^53, else nothing allocated', (t) => {
  const sizeArb = fc.oneof(
    fc.bigInt(0n, 2n ** 64n),
    fc.bigInt(2n ** 20n, 2n ** 40n),
    fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n),
  );
  checkProperty(
    t,
    fc.property(sizeArb, fc.nat(3), fc.uint8Array({ maxLength: 64 }), chunkingArb, (size, zeros, data, chunking) => {
      const input = Buffer.concat([Buffer.from(`${'0'.repeat(zeros)}${size.toString(16)}\r\n`), data]);
      const outcome = decode(split(input, chunking));
      assertSafe(input, outcome);
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
        assert.equal(summary(outcome), 'error: chunk size too large');
      } else if (BigInt(data.length) < size) {
        assert.equal(outcome.error, undefined);
        assert.deepEqual(outcome.data, Buffer.from(data), 'the data present, as it came');
      }
    }),
    200,
  );
});

test('garbage: ChunkedEncodingError only, nothing allocated', (t) => {
  const garbageArb = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    fc.string({ unit: fc.constantFrom('0', '1', 'f', 'F', ';', ' ', '\t', '\r', '\n', '\r\n', 'x', '=', '"', '\0'), maxLength: 80 }).map((s) => Buffer.from(s, 'latin1')),
  );
  checkProperty(
    t,
    fc.property(garbageArb, chunkingArb, (input, chunking) => {
      assertSafe(input, decode(split(input, chunking)));
    }),
    200,
  );
});
