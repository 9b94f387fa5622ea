// Hand-built Matroska for the edge's tests: elements, blocks, Clusters and a stream header.
import assert from 'node:assert/strict';
import type { HeaderMessage, TrackSummary } from '@mkvcast/shared';

/** An element: ID bytes, a 1-byte size (0x80 | length: bodies here stay under 127 bytes), the body. */
export function el(id: number[], body: Buffer): Buffer {
  assert.ok(body.length < 127);
  return Buffer.concat([Buffer.from(id), Buffer.from([0x80 | body.length]), body]);
}

export function uint(n: number, bytes = 2): Buffer {
  const b = Buffer.alloc(bytes);
  b.writeUIntBE(n, 0, bytes);
  return b;
}

/** A SimpleBlock (0xA3): track number as a 1-byte VINT, int16 relative timecode, flags (0x80 keyframe), a payload naming it. */
export function simpleBlock(track: number, relative: number, key: boolean, tag: string): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x80 | track;
  head.writeInt16BE(relative, 1);
  head[3] = key ? 0x80 : 0x00;
  return el([0xa3], Buffer.concat([head, Buffer.from(tag)]));
}

/** A BlockGroup (0xA0) holding a Block (0xA1) and, for a non-key frame, a ReferenceBlock (0xFB). */
export function blockGroup(track: number, relative: number, key: boolean, tag: string): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x80 | track;
  head.writeInt16BE(relative, 1);
  const block = el([0xa1], Buffer.concat([head, Buffer.from(tag)]));
  return el([0xa0], key ? block : Buffer.concat([block, el([0xfb], Buffer.from([0xff]))]));
}

/** A Cluster (0x1F43B675) with its Timestamp (0xE7) first. */
export function cluster(timestamp: number, ...children: Buffer[]): Buffer {
  return el([0x1f, 0x43, 0xb6, 0x75], Buffer.concat([el([0xe7], uint(timestamp, 4)), ...children]));
}

export const VIDEO: TrackSummary = { number: 1, type: 'video', codec: 'V_VP8', setup: '', width: 320, height: 240 };
export const AUDIO: TrackSummary = { number: 2, type: 'audio', codec: 'A_OPUS', setup: '', sampleRate: 48000, channels: 2 };

/** EBML header (0x1A45DFA3) with DocType (0x4282) "webm", Segment (0x18538067) of unknown size, Info (0x1549A966) with TimestampScale (0x2AD7B1) 1 ms. */
export function header(tracks: TrackSummary[], generation = 1): HeaderMessage {
  const ebml = el([0x1a, 0x45, 0xdf, 0xa3], el([0x42, 0x82], Buffer.from('webm')));
  const segment = Buffer.from([0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  const info = el([0x15, 0x49, 0xa9, 0x66], el([0x2a, 0xd7, 0xb1], uint(1_000_000, 3)));
  return { type: 'header', stream: 's', generation, docType: 'webm', tracks, bytes: Buffer.concat([ebml, segment, info]) };
}

/** A block to feed: absolute time, track (1 video, 2 audio), keyframe. */
export interface B {
  time: number;
  track: number;
  key: boolean;
}

/** The blocks as Clusters, `perCluster` blocks each, each Cluster's Timestamp its first block's time. */
export function clustersOf(blocks: B[], perCluster: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < blocks.length; i += perCluster) {
    const group = blocks.slice(i, i + perCluster);
    const base = group[0]!.time;
    out.push(cluster(base, ...group.map((b) => simpleBlock(b.track, b.time - base, b.key, `${b.track}@${b.time}`))));
  }
  return out;
}

/** Video at 25 fps with a keyframe every `gop` ms, and audio every 20 ms, as a muxer interleaves them, up to `ms`. */
export function av(ms: number, gop = 1000, from = 0): B[] {
  const out: B[] = [];
  for (let t = from; t < from + ms; t += 20) {
    if (t % 40 === 0) out.push({ time: t, track: 1, key: t % gop === 0 });
    out.push({ time: t + 5, track: 2, key: true });
  }
  return out;
}
