import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLiveHeader } from '../src/headerDecode.js';
import { MKV_ID, sameTracks } from '@mkvcast/shared';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

// EBML header: ID 1A45DFA3, size 0x87 (7), DocType 4282 size 0x84 "webm"
const EBML = b(0x1a, 0x45, 0xdf, 0xa3, 0x87, 0x42, 0x82, 0x84, 0x77, 0x65, 0x62, 0x6d);
// Info: ID 1549A966, size 0x87 (7): TimestampScale 2AD7B1 size 0x83 = 0x0F4240 (1 000 000)
const INFO = b(0x15, 0x49, 0xa9, 0x66, 0x87, 0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40);
// Tracks: ID 1654AE6B, size 0xB2 (50)
const TRACKS = b(
  0x16, 0x54, 0xae, 0x6b, 0xb2,
  // TrackEntry AE size 0x97 (23)
  0xae, 0x97,
  0xd7, 0x81, 0x01, //                           TrackNumber 1
  0x83, 0x81, 0x01, //                           TrackType 1 (video)
  0x86, 0x85, 0x56, 0x5f, 0x56, 0x50, 0x38, //   CodecID "V_VP8"
  0xe0, 0x88, //                                 Video, size 8
  0xb0, 0x82, 0x01, 0x40, //                     PixelWidth 320
  0xba, 0x82, 0x00, 0xf0, //                     PixelHeight 240
  // TrackEntry AE size 0x97 (23)
  0xae, 0x97,
  0xd7, 0x81, 0x02, //                           TrackNumber 2
  0x83, 0x81, 0x02, //                           TrackType 2 (audio)
  0x86, 0x86, 0x41, 0x5f, 0x4f, 0x50, 0x55, 0x53, // CodecID "A_OPUS"
  0xe1, 0x87, //                                 Audio, size 7
  0xb5, 0x84, 0x47, 0x3b, 0x80, 0x00, //         SamplingFrequency, float 48000 (0x473B8000)
  0x9f, 0x81, 0x02, //                           Channels 2
);

test('tracks carry picture size and audio format for the stats; the generation check ignores them', () => {
  const header = buildLiveHeader(EBML, 'webm', new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, TRACKS]]));
  assert.deepEqual(header.tracks, [
    { number: 1, type: 'video', codec: 'V_VP8', setup: '', width: 320, height: 240 },
    { number: 2, type: 'audio', codec: 'A_OPUS', setup: '', sampleRate: 48000, channels: 2 },
  ]);
  // A publisher back at another picture size keeps its players only if its decoder set-up allows: that is `setup`'s job.
  const plain = header.tracks.map(({ number, type, codec, setup }) => ({ number, type, codec, setup }));
  assert.ok(sameTracks(header.tracks, plain));
});

// The same two tracks as GStreamer's webmmux writes them: CodecID padded with a zero octet (RFC 8794 §7.4).
const PADDED_TRACKS = b(
  0x16, 0x54, 0xae, 0x6b, 0xb6, // Tracks, size 0xB6 (54)
  // TrackEntry AE size 0x98 (24)
  0xae, 0x98,
  0xd7, 0x81, 0x01, //                                 TrackNumber 1
  0x83, 0x81, 0x01, //                                 TrackType 1 (video)
  0x86, 0x86, 0x56, 0x5f, 0x56, 0x50, 0x38, 0x00, //   CodecID "V_VP8\0"
  0xe0, 0x88, //                                       Video, size 8
  0xb0, 0x82, 0x01, 0x40, //                           PixelWidth 320
  0xba, 0x82, 0x00, 0xf0, //                           PixelHeight 240
  // TrackEntry AE size 0x9A (26)
  0xae, 0x9a,
  0xd7, 0x81, 0x02, //                                 TrackNumber 2
  0x83, 0x81, 0x02, //                                 TrackType 2 (audio)
  0x86, 0x87, 0x41, 0x5f, 0x4f, 0x50, 0x55, 0x53, 0x00, // CodecID "A_OPUS\0"
  0xe1, 0x89, //                                       Audio, size 9
  0xb5, 0x84, 0x47, 0x3b, 0x80, 0x00, //               SamplingFrequency, float 48000
  0x9f, 0x81, 0x02, //                                 Channels 2
);

test('a CodecID padded with zero octets (webmmux) reads without its padding', () => {
  const header = buildLiveHeader(EBML, 'webm', new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, PADDED_TRACKS]]));
  assert.deepEqual(
    header.tracks.map((t) => t.codec),
    ['V_VP8', 'A_OPUS'],
  );
});
