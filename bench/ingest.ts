// `npm run bench -- --ingest`: how fast one core frames Matroska (MatroskaScanner) and cuts its
// blocks into Segments (readBlock + PieceBuilder, as the source's ingest does), unpaced and in
// this process, and how fast Segment frames cross from one process to another (ipc.ts). Issue
// targets: ≥ 300 MB/s ingest, ≥ 1 GB/s IPC.
//
// The input is what a live muxer writes: ffmpeg's Matroska output to a pipe (clusters of about
// 32 KiB, cut mid-GOP, so there are keyframes inside Clusters), high bitrate, generated once
// and cached. Each timed run pushes it through fresh scanners, as often as needed to reach
// --ingest-mb, in 64 KiB chunks as a socket would deliver it; each chunk's blocks close a piece.
import { closeSync, openSync } from 'node:fs';
import { link, mkdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MatroskaScanner, MKV_ID } from '@mkvcast/shared';
import { PieceBuilder, buildLiveHeader, readBlock, type Piece } from '@mkvcast/source';
import { defaultMediaDir, ffmpegPath, makeClip } from '../test/helpers/media.js';
import { spawnTracked } from './children.js';
import { measureIpc, median } from './ipc.js';
import type { IpcResult } from './ipc.js';
import type { IngestOptions } from './options.js';

const CHUNK = 64 * 1024;
/** The fan-out bench's clip (same length, so the same cached file). */
const SMALL_CLIP_SECONDS = 30;
const IPC_SEGMENT_SIZES = [256 * 1024, 1024 * 1024];
const FFMPEG_TIMEOUT_MS = 180_000;
const TARGET_INGEST_MBPS = 300;
const TARGET_IPC_GBPS = 1;

interface Recipe {
  name: string;
  args: string[];
}

function recipe(tiny: boolean): Recipe {
  const [size, seconds, rate] = tiny ? ['320x240', 3, '2M'] : ['1280x720', 30, '20M'];
  return {
    name: `ingest-${size}-${seconds}s-${rate}.mkv`,
    args: [
      '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`,
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', String(seconds),
      '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', rate, '-maxrate', rate,
      '-bufsize', rate, '-g', '50', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-f', 'matroska', '-',
    ],
  };
}

/** The cached input, made on first use by ffmpeg writing to a pipe (here: a file as its stdout). */
async function ingestInput(tiny: boolean): Promise<string> {
  const r = recipe(tiny);
  const file = path.join(defaultMediaDir, r.name);
  if (((await stat(file).catch(() => null))?.size ?? 0) > 0) return file;
  await mkdir(defaultMediaDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  process.stderr.write(`bench: generating ${file} (once)\n`);
  const fd = openSync(tmp, 'w');
  try {
    // A file as stdout is not seekable through ffmpeg's pipe: protocol, so the output is laid out
    // exactly as on a pipe.
    const child = spawnTracked(ffmpegPath, r.args, { stdio: ['ignore', fd, 'pipe'] });
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), FFMPEG_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    clearTimeout(timer);
    if (code !== 0) throw new Error(`ffmpeg exited ${code}: ${err}`);
    await link(tmp, file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  } finally {
    closeSync(fd);
    await unlink(tmp).catch(() => {});
  }
  return file;
}

/** The video track number, found as the source finds it: from the header elements before the first Cluster. */
function videoTrackOf(data: Buffer): number {
  const scanner = new MatroskaScanner();
  const elements = new Map<number, Buffer>();
  let ebml: { bytes: Buffer; docType: string } | null = null;
  for (let pos = 0; pos < data.length; pos += CHUNK) {
    for (const e of scanner.push(data.subarray(pos, pos + CHUNK))) {
      if (e.kind === 'ebml') ebml = { bytes: e.bytes, docType: e.docType };
      else if (e.kind === 'element') elements.set(e.id, e.bytes);
      else if (e.kind === 'cluster-start') {
        if (ebml === null || !elements.has(MKV_ID.Tracks)) throw new Error('ingest input: no header before the first Cluster');
        return buildLiveHeader(ebml.bytes, ebml.docType, elements).videoTrack;
      }
    }
  }
  throw new Error('ingest input: no Cluster');
}

interface PassCounts {
  clusters: number;
  pieces: number;
  keyPieces: number;
  outBytes: number;
}

/** The source's cut for streams with video: 250 ms at 1 ms ticks (ingest.ts, VIDEO_SPLIT_MS). */
const SPLIT_TICKS = 250;

/** One pass of the whole input through a fresh scanner; with `videoTrack`, every block into pieces too. */
function pass(data: Buffer, videoTrack: number | null, counts: PassCounts): void {
  const scanner = new MatroskaScanner();
  const builder = new PieceBuilder();
  builder.rules = { videoTrack: videoTrack ?? 0, splitInterval: SPLIT_TICKS };
  const pieces: Piece[] = [];
  let clusterTimestamp = 0;
  const onEvents = (events: ReturnType<MatroskaScanner['push']>): void => {
    for (const e of events) {
      if (e.kind === 'cluster-start') {
        counts.clusters++;
        clusterTimestamp = e.timestamp;
      }
      if (videoTrack === null || e.kind !== 'cluster-child') continue;
      const block = readBlock(e.id, e.bytes);
      if (block === null) continue;
      const time = clusterTimestamp + block.relative;
      builder.add(e.bytes, { clusterTimestamp, time, end: time, track: block.track, keyframe: block.keyframe }, pieces);
    }
    builder.flush(pieces);
    for (const piece of pieces) {
      counts.pieces++;
      if (piece.keyframe) counts.keyPieces++;
      counts.outBytes += piece.bytes.length;
    }
    pieces.length = 0;
  };
  for (let pos = 0; pos < data.length; pos += CHUNK) onEvents(scanner.push(data.subarray(pos, pos + CHUNK)));
  onEvents(scanner.end());
}

/** MB/s (10^6 B/s) of one timed run of `passes` passes. */
function timedRun(data: Buffer, passes: number, videoTrack: number | null, counts: PassCounts): number {
  const started = performance.now();
  for (let i = 0; i < passes; i++) pass(data, videoTrack, counts);
  const seconds = (performance.now() - started) / 1000;
  return Math.round((data.length * passes) / seconds / 1e5) / 10;
}

interface IngestFigures {
  mbps: number;
  runsMbps: number[];
  counts: PassCounts;
}

function measureIngest(data: Buffer, passes: number, runs: number, videoTrack: number | null): IngestFigures {
  const counts: PassCounts = { clusters: 0, pieces: 0, keyPieces: 0, outBytes: 0 };
  timedRun(data, 1, videoTrack, { ...counts }); // warm-up: JIT, not counted
  const runsMbps: number[] = [];
  for (let r = 0; r < runs; r++) runsMbps.push(timedRun(data, passes, videoTrack, counts));
  const per = passes * runs;
  const perPass = { clusters: counts.clusters / per, pieces: counts.pieces / per, keyPieces: counts.keyPieces / per, outBytes: counts.outBytes / per };
  return { mbps: median(runsMbps), runsMbps, counts: perPass };
}

interface InputFigures {
  file: string;
  bytes: number;
  videoTrack: number;
  passes: number;
  scanner: IngestFigures;
  segmenter: IngestFigures;
}

async function measureInput(file: string, o: IngestOptions): Promise<InputFigures> {
  const data = await readFile(file);
  const videoTrack = videoTrackOf(data);
  const passes = Math.max(1, Math.ceil(o.ingestBytes / data.length));
  process.stderr.write(`bench: ingest ${file} (${(data.length / 1e6).toFixed(1)} MB, video track ${videoTrack}), ${passes} pass(es) × ${o.runs} run(s)\n`);
  const scanner = measureIngest(data, passes, o.runs, null);
  const segmenter = measureIngest(data, passes, o.runs, videoTrack);
  return { file, bytes: data.length, videoTrack, passes, scanner, segmenter };
}

function inputJson(f: InputFigures): Record<string, unknown> {
  const { clusters, pieces, keyPieces } = f.segmenter.counts;
  return {
    input: { file: f.file, bytes: f.bytes, clusters, avgClusterBytes: Math.round(f.bytes / clusters), videoTrack: f.videoTrack },
    bytesPerRun: f.bytes * f.passes,
    scannerMBps: f.scanner.mbps,
    scannerRunsMBps: f.scanner.runsMbps,
    scannerSegmenterMBps: f.segmenter.mbps,
    scannerSegmenterRunsMBps: f.segmenter.runsMbps,
    piecesPerPass: pieces,
    keyframePiecesPerPass: keyPieces,
  };
}

export async function runIngestBench(o: IngestOptions): Promise<number> {
  const main = await measureInput(o.input ?? (await ingestInput(o.tiny)), o);
  // The same work on the fan-out bench's 500 kbit/s clip: small blocks, so per-block costs show.
  const small = await measureInput(await makeClip('webm-vp8-opus', { seconds: SMALL_CLIP_SECONDS }), o);
  const ipc = await measureIpc(IPC_SEGMENT_SIZES, o.ipcBytes, o.runs);
  const line = {
    type: 'ingest',
    chunkBytes: CHUNK,
    runs: o.runs,
    ...inputJson(main),
    smallBlocks: inputJson(small),
    ipc: ipc.map((r) => ({ segmentBytes: r.segmentBytes, gbps: r.gbps, runsGbps: r.runsGbps, bytesPerRun: r.bytesPerRun })),
    targets: { ingestMBps: TARGET_INGEST_MBPS, ipcGBps: TARGET_IPC_GBPS },
  };
  process.stdout.write(`${JSON.stringify(line)}\n\n${ingestTable(main, small, ipc, o.tiny)}\n\n`);
  return 0;
}

function ingestTable(main: InputFigures, small: InputFigures, ipc: IpcResult[], tiny: boolean): string {
  // A tiny run is too short to warm up: its figures only show that the bench works.
  const verdict = (value: number, target: number, unit: string): string =>
    tiny ? '(tiny run: no verdict)' : `${value >= target ? 'meets target' : 'BELOW target'} (${target} ${unit})`;
  const mb = (f: InputFigures): string => `${(f.bytes / 1e6).toFixed(1)} MB input, clusters ~${Math.round(f.bytes / f.segmenter.counts.clusters / 1024)} KiB`;
  const rows = [
    [`scanner alone, 1 core (${mb(main)})`, `${main.scanner.mbps} MB/s`, ''],
    ['scanner + pieces, 1 core', `${main.segmenter.mbps} MB/s`, verdict(main.segmenter.mbps, TARGET_INGEST_MBPS, 'MB/s')],
    [`scanner alone, 500 kbit/s clip (${mb(small)})`, `${small.scanner.mbps} MB/s`, ''],
    ['scanner + pieces, 500 kbit/s clip', `${small.segmenter.mbps} MB/s`, verdict(small.segmenter.mbps, TARGET_INGEST_MBPS, 'MB/s')],
    ...ipc.map((r) => [
      `IPC source→edge, ${r.segmentBytes / 1024} KiB Segments`, `${r.gbps} GB/s`, verdict(r.gbps, TARGET_IPC_GBPS, 'GB/s'),
    ]),
  ];
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.max(...rows.map((r) => r[1]!.length));
  return rows.map((r) => `${r[0]!.padEnd(w0)}  ${r[1]!.padStart(w1)}  ${r[2]}`.trimEnd()).join('\n');
}
