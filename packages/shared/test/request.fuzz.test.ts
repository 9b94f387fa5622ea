/** Property-based tests of RequestHeadReader: generated heads, sizes at the limit, truncations, mutations, garbage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_HEAD_BYTES, RequestHeadReader, type RequestHead } from '../src/http/request.js';
import { HTTP_STATUS, HttpError } from '../src/http/errors.js';
import { checkProperty, chunkingArb, mutate, mutationArb, split } from './fuzzing.js';

const TCHAR = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/** Bytes held while the head is incomplete: the limit, plus a terminator that has begun to arrive. */
const MOST_HELD = MAX_HEAD_BYTES + 3;

// ---- generating valid heads (RFC 9112 §3, §5) -------------------------------------------

const tokenArb = fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 12 });

/** Field-value characters: VCHAR and obs-text, read as latin1. */
const fieldCharArb = fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
const fieldValueArb = fc
  .tuple(
    fc.string({ unit: fc.oneof({ arbitrary: fieldCharArb, weight: 5 }, fc.constantFrom(' ', '\t')), maxLength: 40 }),
    fc.constantFrom('', ' ', '\t', '  '),
    fc.constantFrom('', ' ', '\t '),
  )
  // OWS around the value is not part of it; nor, for String#trim, is NBSP (0xa0).
  .filter(([value]) => value === value.trim())
  .map(([value, before, after]) => ({ value, written: before + value + after }));

/** Path segments of any Unicode; "." and ".." would be resolved away (RFC 3986 §5.2.4). */
const segmentArb = fc.string({ unit: 'grapheme', maxLength: 8 }).filter((s) => s !== '.' && s !== '..');

interface HeadModel {
  bytes: Buffer;
  method: string;
  path: string;
  query: Array<[string, string]>;
  version: '1.0' | '1.1';
  headers: Map<string, string>;
}

const headArb: fc.Arbitrary<HeadModel> = fc
  .record({
    method: tokenArb,
    segments: fc.array(segmentArb, { maxLength: 5 }),
    query: fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 })), { maxLength: 3 }),
    version: fc.constantFrom<'1.0' | '1.1'>('1.0', '1.1'),
    fields: fc.array(fc.tuple(tokenArb, fieldValueArb), { maxLength: 8 }),
  })
  .map(({ method, segments, query, version, fields }) => {
    const search = query.length > 0 ? `?${new URLSearchParams(query).toString()}` : '';
    const target = '/' + segments.map(encodeURIComponent).join('/') + search;
    const lines = [`${method} ${target} HTTP/${version}`, ...fields.map(([name, v]) => `${name}:${v.written}`)];
    const headers = new Map<string, string>();
    for (const [name, { value }] of fields) {
      const key = name.toLowerCase();
      const prior = headers.get(key);
      headers.set(key, prior === undefined ? value : `${prior}, ${value}`);
    }
    const bytes = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
    return { bytes, method, path: '/' + segments.join('/'), query, version, headers };
  });

function assertHead(head: RequestHead, model: HeadModel): void {
  assert.equal(head.method, model.method);
  assert.equal(head.path, model.path);
  assert.deepEqual([...head.query], model.query);
  assert.equal(head.version, model.version);
  assert.deepEqual(head.headers, model.headers);
}

// ---- reading ----------------------------------------------------------------------

interface Outcome {
  head?: RequestHead;
  /** Bytes after the head: the rest of the push that completed it, then every later push. */
  after: Buffer;
  error?: unknown;
}

/** Pushes until the head is complete or refused; checks what is held on the way. */
function read(chunks: Buffer[]): Outcome {
  const reader = new RequestHeadReader();
  let pushed = 0;
  for (let i = 0; i < chunks.length; i++) {
    let result;
    try {
      result = reader.push(chunks[i]!);
    } catch (error) {
      return { after: Buffer.alloc(0), error };
    }
    pushed += chunks[i]!.length;
    assert.equal(reader.received.length, pushed, 'received is every byte pushed');
    if (result) return { head: result.head, after: Buffer.concat([result.rest, ...chunks.slice(i + 1)]) };
    assert.ok(pushed <= MOST_HELD, `${pushed} bytes held without a complete head`);
  }
  return { after: Buffer.alloc(0) };
}

function assertHttpError(err: unknown): void {
  assert.ok(err instanceof HttpError, `not an HttpError: ${String(err)}`);
  assert.ok(err.code in HTTP_STATUS, `code ${err.code}`);
  assert.equal(typeof err.status, 'number');
}

function summary(outcome: Outcome): string {
  if (outcome.error) return `error ${(outcome.error as { code?: string }).code}`;
  return outcome.head ? `head, ${outcome.after.length} bytes after` : 'incomplete';
}

// ---- properties ---------------------------------------------------------------------

test('valid heads parse the same whatever the chunking; the bytes after the head are kept', (t) => {
  checkProperty(
    t,
    fc.property(headArb, fc.uint8Array({ maxLength: 40 }), chunkingArb, (model, body, chunking) => {
      const input = Buffer.concat([model.bytes, body]);
      for (const chunks of [[input], split(input, chunking)]) {
        const outcome = read(chunks);
        assert.equal(outcome.error, undefined, String(outcome.error));
        assert.ok(outcome.head, 'head complete');
        assertHead(outcome.head, model);
        assert.deepEqual(outcome.after, Buffer.from(body));
      }
    }),
    300,
  );
});

test('heads around MAX_HEAD_BYTES: accepted or refused alike whatever the chunking', (t) => {
  // Cuts anywhere, and cuts counted back from the end: inside the final CRLF CRLF.
  const cutArb = fc.oneof(fc.nat(), fc.integer({ min: -8, max: -1 }));
  checkProperty(
    t,
    fc.property(headArb, fc.integer({ min: -8, max: 8 }), fc.array(cutArb, { maxLength: 12 }), (model, delta, cuts) => {
      // Pad with one more field so that the head, its final CRLF CRLF excluded, is MAX_HEAD_BYTES + delta long.
      const head = model.bytes.subarray(0, model.bytes.length - 2); // keeps the CRLF that ends the last line
      const padLength = MAX_HEAD_BYTES + delta - head.length - 'X-Pad: '.length;
      fc.pre(padLength >= 0);
      const input = Buffer.concat([head, Buffer.from(`X-Pad: ${'p'.repeat(padLength)}\r\n\r\n`)]);
      assert.equal(input.length, MAX_HEAD_BYTES + delta + 4);
      const whole = read([input]);
      assert.equal(summary(whole), delta <= 0 ? 'head, 0 bytes after' : 'error MKV_ERR_HEADERS_TOO_LARGE');
      const chunks = split(input, cuts.map((c) => (c < 0 ? input.length + c : c)));
      assert.equal(summary(read(chunks)), summary(whole));
    }),
    200,
  );
});

test('every truncation of a valid head waits for more, holding no more than the limit', (t) => {
  checkProperty(
    t,
    fc.property(headArb, (model) => {
      for (let length = 0; length < model.bytes.length; length++) {
        const outcome = read([model.bytes.subarray(0, length)]);
        assert.equal(summary(outcome), 'incomplete', `cut at ${length}`);
      }
    }),
    100,
  );
});

test('mutated heads and garbage: HttpError or a head, never anything else; bounded while waiting', (t) => {
  const inputArb = fc.oneof(
    fc.tuple(headArb, fc.array(mutationArb, { minLength: 1, maxLength: 6 })).map(([model, mutations]) => mutate(model.bytes, mutations)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    // Printable garbage with line breaks: gets past the head's end more often.
    fc.string({ unit: fc.constantFrom('G', 'E', 'T', ' ', '/', ':', '%', '\r', '\n', '\r\n', 'HTTP/1.1', 'a', '?', '#', '\0'), maxLength: 60 }).map((s) => Buffer.from(s, 'latin1')),
    fc.integer({ min: 1, max: 3 * MAX_HEAD_BYTES }).map((n) => Buffer.alloc(n, 'a')),
  );
  checkProperty(
    t,
    fc.property(inputArb, chunkingArb, (input, chunking) => {
      // Byte by byte, a long input costs thousands of pushes, each joining all before it; cut it instead.
      const outcome = read(split(input, chunking === 'bytes' && input.length > 1024 ? [1, 2, 3, 1025] : chunking));
      if (outcome.error !== undefined) assertHttpError(outcome.error);
      if (outcome.head) {
        assert.match(outcome.head.method, /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
        for (const name of outcome.head.headers.keys()) assert.match(name, /^[!#$%&'*+.^_`|~0-9a-z-]+$/);
      }
    }),
    300,
  );
});
