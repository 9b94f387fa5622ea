// What DASH costs an edge on its receive path, in-process: DashStore.push per Segment message
// (one Cluster per video frame, as the source forwards a live stream: a 2250-byte VP8 frame,
// i.e. 450 kbit/s at 25 fps, and two 120-byte Opus packets), and building one segment's bytes.
// `node build/bench/dash.js [seconds of stream, default 600]`; bounded by that count and 30 s.
import { encodeSize8 } from '@mkvcast/shared';
import { DashStore } from '@mkvcast/edge';

const MAX_SECONDS = 3600;
const TIME_LIMIT_MS = 30_000;
const FRAME_MS = 40;

function el(id: number[], body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(id), encodeSize8(body.length), body]);
}

function simpleBlock(track: number, relative: number, key: boolean, size: number): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x80 | track;
  head.writeInt16BE(relative, 1);
  head[3] = key ? 0x80 : 0;
  return el([0xa3], Buffer.concat([head, Buffer.alloc(size, 7)]));
}

function timestamp(t: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 0xe7;
  b[1] = 0x88;
  b.writeBigUInt64BE(BigInt(t), 2);
  return b;
}

const seconds = Math.min(MAX_SECONDS, Number(process.argv[2] ?? 600));
const header = {
  type: 'header' as const,
  stream: 'bench',
  generation: 1,
  docType: 'webm',
  // EBML header with DocType "webm", then a Segment of unknown size.
  bytes: Buffer.from('1a45dfa3874282847765626d18538067' + '01ffffffffffffff', 'hex'),
  tracks: [
    { number: 1, type: 'video' as const, codec: 'V_VP8', setup: '' },
    { number: 2, type: 'audio' as const, codec: 'A_OPUS', setup: '' },
  ],
};
const messages: Buffer[] = [];
for (let t = 0; t < seconds * 1000; t += FRAME_MS) {
  const blocks = [simpleBlock(1, 0, t % 1000 === 0, 2250), simpleBlock(2, 5, true, 120), simpleBlock(2, 25, true, 120)];
  messages.push(el([0x1f, 0x43, 0xb6, 0x75], Buffer.concat([timestamp(t), ...blocks])));
}
const store = new DashStore(header, { maxAgeMs: 10_000, maxBytes: 64 << 20 });
const deadline = Date.now() + TIME_LIMIT_MS;
let pushed = 0;
const start = process.hrtime.bigint();
for (const m of messages) {
  store.push(m, Date.now());
  if (++pushed % 1000 === 0 && Date.now() > deadline) break;
}
const pushNs = Number(process.hrtime.bigint() - start) / pushed;
const segments = store.segments();
const buildStart = process.hrtime.bigint();
let bytes = 0;
for (const s of segments) bytes += s.bytes.length;
const buildMs = Number(process.hrtime.bigint() - buildStart) / 1e6 / Math.max(1, segments.length);
console.log(
  JSON.stringify({
    messages: pushed,
    pushUsPerMessage: +(pushNs / 1000).toFixed(2),
    coreShareAt25MessagesPerSecond: +((pushNs * 25) / 1e9).toFixed(5),
    segments: segments.length,
    buildMsPerSegment: +buildMs.toFixed(3),
    bytesPerSegment: Math.round(bytes / Math.max(1, segments.length)),
  }),
);
