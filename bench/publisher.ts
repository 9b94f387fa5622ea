// The latency bench's publisher, in its own process: sends a looped WebM clip live to a server by
// HTTP PUT (mkvcast's /live/<name>, or an Icecast mount with its source password), stamps every
// video frame with a marker the players can find in their bytes, and logs on stdout the wall
// time at which each marked frame went into the socket.
//
//   node build/bench/publisher.js --url http://127.0.0.1:PORT/live/x --clip clip.webm
//        [--password P] [--mode progressive|cluster] [--duration-s 600]
//
// Modes: progressive writes each block at its frame time into unknown-size Clusters, as
// GStreamer's `matroskamux streamable=true` and MediaRecorder do; cluster writes each Cluster
// (one GOP, ~1 s) whole, with its size, once its last frame is due: as ffmpeg's muxer does.
// stdout: "ready" once the stream header is written, then "m <seq> <writeMs>" per marked frame
// (writeMs: performance.timeOrigin + performance.now(), comparable across processes).
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MKV_ID, EBML_ID, UNKNOWN_SIZE_8, encodeSize8, encodeUintElement, readId, readSize, readUint } from '@mkvcast/shared';
import type { VintRead } from '@mkvcast/shared';
import { MARKER_BYTES, MARKER_MAGIC } from './marker.js';

const MAX_CLIP_BYTES = 64 * 1024 * 1024;
const MAX_DURATION_S = 3600;

interface Frame {
  track: number;
  /** Clip time of the frame, ms (TimestampScale 1 ms, as ffmpeg writes WebM). */
  ts: number;
  key: boolean;
  video: boolean;
  /** Block payload: the flags byte's frame data after the 4-byte block header, lacing kept. */
  flags: number;
  data: Buffer;
}

interface Clip {
  /** EBML header + Segment (unknown size) + Info + Tracks. */
  header: Buffer;
  frames: Frame[];
  /** Clip length, ms: a pass follows the previous one by this much. */
  durationMs: number;
}

function child(buf: Buffer, pos: number, end: number): { id: number; start: number; end: number; next: number } {
  const id = readId(buf, pos, end);
  if (typeof id === 'number') throw new Error(`bad element ID at ${pos}`);
  const size = readSize(buf, pos + id.length, end);
  if (typeof size === 'number') throw new Error(`bad element size at ${pos}`);
  const start = pos + id.length + (size as VintRead).length;
  const stop = size.value < 0 ? end : Math.min(end, start + size.value);
  return { id: id.value, start, end: stop, next: stop };
}

/**
 * The clip's header and frames. Hand-written because node-ebml gives decoded values, not the
 * raw byte ranges a remux needs; the clip is ours (ffmpeg, known sizes, SimpleBlocks).
 */
function readClip(file: string): Clip {
  const buf = readFileSync(file);
  if (buf.length > MAX_CLIP_BYTES) throw new Error(`${file}: larger than ${MAX_CLIP_BYTES} bytes`);
  const ebml = child(buf, 0, buf.length);
  if (ebml.id !== EBML_ID.EBML) throw new Error(`${file}: not EBML`);
  const seg = child(buf, ebml.next, buf.length);
  if (seg.id !== MKV_ID.Segment) throw new Error(`${file}: no Segment`);
  const head: Buffer[] = [buf.subarray(0, ebml.next), Buffer.from([0x18, 0x53, 0x80, 0x67]), UNKNOWN_SIZE_8];
  const videoTracks = new Set<number>();
  const frames: Frame[] = [];
  for (let pos = seg.start; pos < seg.end; ) {
    const el = child(buf, pos, seg.end);
    if (el.id === MKV_ID.Info) head.push(buf.subarray(pos, el.end));
    else if (el.id === MKV_ID.Tracks) {
      head.push(buf.subarray(pos, el.end));
      readVideoTracks(buf, el.start, el.end, videoTracks);
    } else if (el.id === MKV_ID.Cluster) readCluster(buf, el.start, el.end, videoTracks, frames);
    pos = el.next;
  }
  if (frames.length === 0 || videoTracks.size === 0) throw new Error(`${file}: no video frames`);
  const first = frames[0]!.ts;
  for (const f of frames) f.ts -= first;
  const videoTs = frames.filter((f) => f.video).map((f) => f.ts);
  const step = videoTs.length > 1 ? videoTs[1]! - videoTs[0]! : 40;
  return { header: Buffer.concat(head), frames, durationMs: videoTs.at(-1)! + step };
}

function readVideoTracks(buf: Buffer, start: number, end: number, out: Set<number>): void {
  for (let pos = start; pos < end; ) {
    const entry = child(buf, pos, end);
    let number = 0;
    let type = 0;
    for (let p = entry.start; p < entry.end; ) {
      const el = child(buf, p, entry.end);
      if (el.id === MKV_ID.TrackNumber) number = readUint(buf, el.start, el.end - el.start);
      if (el.id === MKV_ID.TrackType) type = readUint(buf, el.start, el.end - el.start);
      p = el.next;
    }
    if (type === 1) out.add(number);
    pos = entry.next;
  }
}

function readCluster(buf: Buffer, start: number, end: number, video: Set<number>, out: Frame[]): void {
  let clusterTs = 0;
  for (let pos = start; pos < end; ) {
    const el = child(buf, pos, end);
    if (el.id === MKV_ID.Timestamp) clusterTs = readUint(buf, el.start, el.end - el.start);
    let block: { start: number; end: number; simple: boolean } | null = null;
    if (el.id === MKV_ID.SimpleBlock) block = { start: el.start, end: el.end, simple: true };
    if (el.id === MKV_ID.BlockGroup) {
      for (let p = el.start; p < el.end; ) {
        const b = child(buf, p, el.end);
        if (b.id === MKV_ID.Block) block = { start: b.start, end: b.end, simple: false };
        p = b.next;
      }
    }
    if (block !== null) {
      // Block header (RFC 9559 §10.1): track VINT (one byte here), int16 timestamp, flags.
      const track = buf[block.start]! & 0x7f;
      const rel = buf.readInt16BE(block.start + 1);
      const flags = buf[block.start + 3]!;
      // A Block in a BlockGroup (Opus's last frames) becomes a SimpleBlock; audio is all keys.
      const key = block.simple ? (flags & 0x80) !== 0 : true;
      out.push({ track, ts: clusterTs + rel, key, video: video.has(track), flags: flags | (key ? 0x80 : 0), data: buf.subarray(block.start + 4, block.end) });
    }
    pos = el.next;
  }
}

/** One SimpleBlock at `rel` ms into its Cluster; a video frame carries the marker after its data. */
function simpleBlock(f: Frame, rel: number, seq: number | null): Buffer {
  const extra = seq === null ? 0 : MARKER_BYTES;
  const out = Buffer.allocUnsafe(1 + 8 + 4 + f.data.length + extra);
  out[0] = MKV_ID.SimpleBlock;
  encodeSize8(4 + f.data.length + extra).copy(out, 1);
  out[9] = 0x80 | f.track;
  out.writeInt16BE(rel, 10);
  out[12] = f.flags;
  f.data.copy(out, 13);
  if (seq !== null) {
    // Trailing bytes after a VP8 frame's last partition: decoders stop before them.
    MARKER_MAGIC.copy(out, 13 + f.data.length);
    out.writeUInt32BE(seq >>> 0, 13 + f.data.length + MARKER_MAGIC.length);
  }
  return out;
}

function clusterHead(ts: number, size: number | null): Buffer {
  const id = Buffer.from([0x1f, 0x43, 0xb6, 0x75]);
  return Buffer.concat([id, size === null ? UNKNOWN_SIZE_8 : encodeSize8(size), encodeUintElement(MKV_ID.Timestamp, ts)]);
}

interface Options {
  url: URL;
  password: string | null;
  clip: string;
  mode: 'progressive' | 'cluster';
  durationS: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      password: { type: 'string' },
      clip: { type: 'string' },
      mode: { type: 'string', default: 'progressive' },
      'duration-s': { type: 'string', default: '600' },
    },
  });
  if (values.url === undefined || values.clip === undefined) throw new Error('--url and --clip are required');
  const url = new URL(values.url);
  // Loopback only, as the load generator.
  if (url.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) throw new Error(`refusing ${url.href}`);
  if (values.mode !== 'progressive' && values.mode !== 'cluster') throw new Error('--mode: progressive or cluster');
  const durationS = Number(values['duration-s']);
  if (!(durationS > 0 && durationS <= MAX_DURATION_S)) throw new Error(`--duration-s in (0, ${MAX_DURATION_S}]`);
  return { url, password: values.password ?? null, clip: values.clip, mode: values.mode, durationS };
}

const wallMs = (): number => performance.timeOrigin + performance.now();

/** A write due at `atMs` (performance.now()), the frames it carries, and their sequence numbers. */
interface Write {
  atMs: number;
  bytes: Buffer;
  seqs: number[];
}

/**
 * The writes of one pass, in order. Clusters open at each video keyframe (one GOP); timestamps
 * run on from the passes before, so the stream is seamless.
 */
function* passWrites(clip: Clip, mode: Options['mode'], pass: number, t0: number, seq: { next: number }): Generator<Write> {
  const offset = pass * clip.durationMs;
  let cluster: { ts: number; parts: Buffer[]; seqs: number[] } | null = null;
  const flush = function* (atMs: number): Generator<Write> {
    if (cluster === null || mode !== 'cluster') return;
    const body = Buffer.concat(cluster.parts);
    const head = clusterHead(cluster.ts, 0);
    const size = body.length + head.length - 12; // the Cluster's data: its Timestamp element and blocks
    yield { atMs, bytes: Buffer.concat([clusterHead(cluster.ts, size), body]), seqs: cluster.seqs };
  };
  for (const f of clip.frames) {
    const ts = offset + f.ts;
    const at = t0 + ts;
    if (cluster === null || (f.video && f.key) || ts - cluster.ts > 30_000) {
      // ffmpeg writes a Cluster when the next one begins: its last frame has been muxed.
      yield* flush(at);
      cluster = { ts, parts: [], seqs: [] };
      if (mode === 'progressive') cluster.parts.push(clusterHead(ts, null));
    }
    const s = f.video ? seq.next++ : null;
    const block = simpleBlock(f, ts - cluster.ts, s);
    if (mode === 'progressive') {
      const head = cluster.parts.splice(0);
      yield { atMs: at, bytes: head.length > 0 ? Buffer.concat([...head, block]) : block, seqs: s === null ? [] : [s] };
    } else {
      cluster.parts.push(block);
      if (s !== null) cluster.seqs.push(s);
    }
  }
  yield* flush(t0 + offset + clip.durationMs);
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const clip = readClip(o.clip);
  const socket = net.connect({ host: o.url.hostname.replace(/^\[|\]$/g, ''), port: Number(o.url.port || 80) });
  socket.setNoDelay(true);
  socket.on('error', (err) => {
    process.stderr.write(`publisher: ${err.message}\n`);
    process.exit(1);
  });
  // The server ending the upload ends the run: a publisher cut off is a failure.
  socket.on('close', () => {
    process.stderr.write('publisher: the server closed the connection\n');
    process.exit(1);
  });
  socket.on('data', () => undefined); // the server's answer (Icecast's 200, mkvcast's 100/200)
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const auth = o.password === null ? '' : `Authorization: Basic ${Buffer.from(`source:${o.password}`).toString('base64')}\r\n`;
  // No Content-Length and no chunking: the body runs to the end of the connection (RFC 9112 §6.3).
  socket.write(`PUT ${o.url.pathname} HTTP/1.1\r\nHost: ${o.url.host}\r\nContent-Type: video/webm\r\n${auth}Ice-Public: 0\r\n\r\n`);
  socket.write(clip.header);
  process.stdout.write('ready\n');
  const t0 = performance.now() + 100;
  const end = t0 + o.durationS * 1000;
  const seq = { next: 1 };
  for (let pass = 0; ; pass++) {
    for (const w of passWrites(clip, o.mode, pass, t0, seq)) {
      if (w.atMs > end) {
        socket.destroy();
        process.exit(0);
      }
      const wait = w.atMs - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      // Backpressure does not pause a live source: the server must keep up (a full socket
      // shows as latency on the players' side, which is what is measured).
      socket.write(w.bytes);
      const at = wallMs().toFixed(2);
      if (w.seqs.length > 0) process.stdout.write(w.seqs.map((s) => `m ${s} ${at}\n`).join(''));
    }
  }
}

main().catch((err: Error) => {
  process.stderr.write(`publisher: ${err.message}\n`);
  process.exit(64);
});
