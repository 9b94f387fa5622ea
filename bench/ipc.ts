// Source → edge IPC speed: Segment frames made by encodeFrame() and sent through Channel over a
// Unix socket to another process (ipcpeer.ts), which decodes them with Channel as an edge does.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Channel, encodeFrame } from '@mkvcast/shared';
import { removeOnExit, spawnTracked, stopChild } from './children.js';
import type { PeerIn, PeerOut } from './ipcpeer.js';

const PEER = fileURLToPath(new URL('./ipcpeer.js', import.meta.url));
const READY_TIMEOUT_MS = 10_000;
const RUN_TIMEOUT_MS = 60_000;

export interface IpcResult {
  segmentBytes: number;
  /** Payload bytes per second over the socket, median of the runs, in GB/s (10^9). */
  gbps: number;
  runsGbps: number[];
  bytesPerRun: number;
}

/** Outgoing: Segments (encoded apart, with encodeFrame) and the mark that ends a run. */
type Out = PeerIn;

export async function measureIpc(segmentSizes: number[], bytesPerRun: number, runs: number): Promise<IpcResult[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-bench-ipc-'));
  const cleanup = removeOnExit(dir);
  const socketPath = path.join(dir, 'ipc.sock');
  const peer = spawnTracked(process.execPath, [PEER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await waitReady(peer.stdout!);
    const socket = net.createConnection(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const channel = new Channel<PeerOut, Out>(socket);
    const results: IpcResult[] = [];
    for (const size of segmentSizes) {
      const payload = Buffer.alloc(size, 0x5a);
      const count = Math.max(1, Math.round(bytesPerRun / size));
      await oneRun(channel, payload, Math.max(1, count >> 2)); // warm-up, not counted
      const runsGbps: number[] = [];
      for (let r = 0; r < runs; r++) runsGbps.push(await oneRun(channel, payload, count));
      results.push({ segmentBytes: size, gbps: median(runsGbps), runsGbps, bytesPerRun: count * size });
    }
    channel.close();
    return results;
  } finally {
    await stopChild(peer, 2000);
    await rm(dir, { recursive: true, force: true });
    cleanup.forget();
  }
}

/** Sends `count` Segments and a mark; GB/s from the first send to the peer's answer. */
async function oneRun(channel: Channel<PeerOut, Out>, payload: Buffer, count: number): Promise<number> {
  const answered = nextResult(channel);
  const started = performance.now();
  for (let seq = 0; seq < count; seq++) {
    // The fields of a SegmentMessage, so that the frame is the size and shape the source sends.
    const frame = encodeFrame({ type: 'segment', stream: 'bench', seq, ts: seq * 40, keyframe: seq % 25 === 0, sentAt: Date.now(), bytes: payload });
    // Backpressure as the source does it: stop at a full socket buffer until 'drain'.
    if (!channel.sendFrame(frame)) await drained(channel);
  }
  channel.send({ type: 'mark' });
  const result = await answered;
  const seconds = (performance.now() - started) / 1000;
  if (result.bytes !== count * payload.length) throw new Error(`IPC peer received ${result.bytes} bytes, expected ${count * payload.length}`);
  return Math.round((result.bytes / seconds / 1e9) * 1000) / 1000;
}

function nextResult(channel: Channel<PeerOut, Out>): Promise<PeerOut> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('IPC peer did not answer in time')), RUN_TIMEOUT_MS);
    const onMessage = (m: PeerOut): void => done(null, m);
    const onClose = (err: Error | undefined): void => done(err ?? new Error('IPC channel closed'));
    const done = (err: Error | null, m?: PeerOut): void => {
      clearTimeout(timer);
      channel.off('message', onMessage);
      channel.off('close', onClose);
      if (err !== null) reject(err);
      else resolve(m!);
    };
    channel.on('message', onMessage);
    channel.on('close', onClose);
  });
}

function drained(channel: Channel<PeerOut, Out>): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      channel.off('close', onClose);
      resolve();
    };
    const onClose = (err: Error | undefined): void => {
      channel.off('drain', onDrain);
      reject(err ?? new Error('IPC channel closed'));
    };
    channel.once('drain', onDrain);
    channel.once('close', onClose);
  });
}

function waitReady(stdout: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('IPC peer did not start')), READY_TIMEOUT_MS);
    let text = '';
    stdout.setEncoding('utf8');
    stdout.on('data', (s: string) => {
      text += s;
      if (text.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    stdout.once('end', () => {
      clearTimeout(timer);
      reject(new Error('IPC peer exited before it was ready'));
    });
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
