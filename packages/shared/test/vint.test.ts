import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CORRUPT, NEED_MORE, UNKNOWN_SIZE, readId, readSize, vintLength } from '../src/ebml/vint.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

test('vintLength counts leading zero bits plus one; 0x00 is illegal', () => {
  assert.equal(vintLength(0x80), 1); // 1xxx xxxx
  assert.equal(vintLength(0x40), 2); // 01xx xxxx
  assert.equal(vintLength(0x1a), 4); // 0001 1010
  assert.equal(vintLength(0x01), 8); // 0000 0001
  assert.equal(vintLength(0x00), 0); // no marker in the first byte
});

test('readId keeps the marker bits, for IDs of 1 to 4 bytes', () => {
  assert.deepEqual(readId(b(0xa3), 0), { value: 0xa3, length: 1 }); // SimpleBlock
  assert.deepEqual(readId(b(0x42, 0x82), 0), { value: 0x4282, length: 2 }); // DocType
  assert.deepEqual(readId(b(0x2a, 0xd7, 0xb1), 0), { value: 0x2ad7b1, length: 3 }); // TimestampScale
  assert.deepEqual(readId(b(0x1a, 0x45, 0xdf, 0xa3), 0), { value: 0x1a45dfa3, length: 4 }); // EBML
  assert.deepEqual(readId(b(0x00, 0x1f, 0x43, 0xb6, 0x75), 1), { value: 0x1f43b675, length: 4 }); // Cluster at pos 1
  assert.deepEqual(readId(b(0x80), 0), { value: 0x80, length: 1 }); // ChapterDisplay: allowed by RFC 9559
});

test('readId returns NEED_MORE when the buffer (or `end`) stops inside the ID', () => {
  assert.equal(readId(b(), 0), NEED_MORE); // nothing at all
  assert.equal(readId(b(0x1a, 0x45, 0xdf), 0), NEED_MORE); // 4-byte ID, 3 bytes here
  assert.equal(readId(b(0x1a, 0x45, 0xdf, 0xa3), 0, 2), NEED_MORE); // `end` cuts it
  assert.equal(readId(b(0xa3), 1), NEED_MORE); // pos at the end
});

test('readId returns CORRUPT for bytes that are not an Element ID (RFC 8794 §5)', () => {
  assert.equal(readId(b(0x00, 0x00), 0), CORRUPT); // no marker bit in the first byte
  assert.equal(readId(b(0x08, 0x00, 0x00, 0x00, 0x01), 0), CORRUPT); // 5-byte ID: longer than 4
  assert.equal(readId(b(0xff), 0), CORRUPT); // 1-byte, VINT_DATA all ones: reserved
  assert.equal(readId(b(0x7f, 0xff), 0), CORRUPT); // 2-byte, all ones: reserved
  assert.equal(readId(b(0x40, 0x00), 0), CORRUPT); // 2-byte, all zeros
  assert.equal(readId(b(0x40, 0x01), 0), CORRUPT); // 1 fits in one byte (0x81): not the shortest encoding
  assert.equal(readId(b(0x10, 0x00, 0x00, 0x01), 0), CORRUPT); // same, 4 bytes
  assert.deepEqual(readId(b(0x40, 0x7f), 0), { value: 0x407f, length: 2 }); // 127: 0xFF is reserved, so 2 bytes is shortest
});

test('readSize strips the marker, for sizes of 1 to 8 bytes', () => {
  assert.deepEqual(readSize(b(0x81), 0), { value: 1, length: 1 }); // 1000 0001
  assert.deepEqual(readSize(b(0x80), 0), { value: 0, length: 1 }); // size 0 is fine
  assert.deepEqual(readSize(b(0x40, 0x02), 0), { value: 2, length: 2 }); // 2 written in 2 bytes (allowed)
  assert.deepEqual(readSize(b(0x21, 0x00, 0x00), 0), { value: 0x10000, length: 3 });
  assert.deepEqual(readSize(b(0x10, 0x12, 0x34, 0x56), 0), { value: 0x123456, length: 4 });
  assert.deepEqual(
    readSize(b(0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03), 0), // 8 bytes: 0x010203
    { value: 0x010203, length: 8 },
  );
  assert.deepEqual(
    readSize(b(0x01, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 0), // 2^53 - 1, the largest exact
    { value: Number.MAX_SAFE_INTEGER, length: 8 },
  );
});

test('readSize reports an all-ones size of any length as UNKNOWN_SIZE (RFC 8794 §6.2)', () => {
  assert.deepEqual(readSize(b(0xff), 0), { value: UNKNOWN_SIZE, length: 1 }); // 1xxx xxxx all ones
  assert.deepEqual(readSize(b(0x7f, 0xff), 0), { value: UNKNOWN_SIZE, length: 2 });
  assert.deepEqual(
    readSize(b(0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 0), // what ffmpeg writes for live
    { value: UNKNOWN_SIZE, length: 8 },
  );
  // One bit short of all ones is a real size.
  assert.deepEqual(readSize(b(0x7f, 0xfe), 0), { value: 0x3ffe, length: 2 });
  assert.deepEqual(readSize(b(0xfe), 0), { value: 0x7e, length: 1 });
});

test('readSize returns NEED_MORE and CORRUPT', () => {
  assert.equal(readSize(b(), 0), NEED_MORE); // nothing
  assert.equal(readSize(b(0x01, 0xff, 0xff), 0), NEED_MORE); // 8-byte size, 3 bytes here
  assert.equal(readSize(b(0x40, 0x02), 0, 1), NEED_MORE); // `end` cuts it
  assert.equal(readSize(b(0x00, 0x81), 0), CORRUPT); // no marker bit in the first byte
  assert.equal(readSize(b(0x01, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00), 0), CORRUPT); // 2^53: not exact
});
