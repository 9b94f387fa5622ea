import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MKV_ID } from '@mkvcast/shared';
import { buildLiveHeader, withoutChildren } from '../src/header.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

// EBML header: ID 1A45DFA3, size 0x88 (8), DocType 0x4282 size 0x84 "webm"
const EBML = b(0x1a, 0x45, 0xdf, 0xa3, 0x87, 0x42, 0x82, 0x84, 0x77, 0x65, 0x62, 0x6d);
// Info: ID 1549A966, size 0x8B (11)
//   TimestampScale 2AD7B1, size 0x83, 0x0F4240 (1 000 000)
//   Duration 4489, size 0x84, float 1.0e4 (0x461C4000)
const INFO = b(0x15, 0x49, 0xa9, 0x66, 0x8e, 0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40, 0x44, 0x89, 0x84, 0x46, 0x1c, 0x40, 0x00);
// Tracks: ID 1654AE6B, size 0x93 (19)
//   TrackEntry AE size 0x8A (10): TrackNumber D7 81 01, TrackType 83 81 01 (video), CodecID 86 82 "V8"
//   TrackEntry AE size 0x85 (5): TrackNumber D7 81 02, Void EC 80 (no type, no codec)
const TRACKS = b(
  0x16, 0x54, 0xae, 0x6b, 0x93,
  0xae, 0x8a, 0xd7, 0x81, 0x01, 0x83, 0x81, 0x01, 0x86, 0x82, 0x56, 0x38,
  0xae, 0x85, 0xd7, 0x81, 0x02, 0xec, 0x80,
);

test('withoutChildren drops Duration and rewrites the size', () => {
  const info = withoutChildren(INFO, new Set([MKV_ID.Duration]));
  // ID kept, size as an 8-byte VINT of 7 (0x01 00.. 07), then TimestampScale only
  assert.deepEqual(info, Buffer.concat([INFO.subarray(0, 4), b(0x01, 0, 0, 0, 0, 0, 0, 7), INFO.subarray(5, 12)]));
});

test('buildLiveHeader: EBML header, unknown-size Segment, Info without Duration, Tracks', () => {
  const header = buildLiveHeader(EBML, 'webm', new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, TRACKS]]));
  assert.equal(header.timestampScale, 1_000_000);
  assert.equal(header.videoTrack, 1);
  assert.deepEqual(header.tracks, [
    { number: 1, type: 'video', codec: 'V8', setup: '' },
    { number: 2, type: 'other', codec: 'unknown', setup: '' },
  ]);
  const segment = b(0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  const info = withoutChildren(INFO, new Set([MKV_ID.Duration]));
  assert.deepEqual(header.bytes, Buffer.concat([EBML, segment, info, TRACKS]));
});

test('a header without Tracks or Info is a corrupt stream', () => {
  const code = (elements: Map<number, Buffer>) => {
    try {
      buildLiveHeader(EBML, 'webm', elements);
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };
  assert.equal(code(new Map([[MKV_ID.Info, INFO]])), 'MKV_ERR_CORRUPT_STREAM');
  assert.equal(code(new Map([[MKV_ID.Tracks, TRACKS]])), 'MKV_ERR_CORRUPT_STREAM');
});
