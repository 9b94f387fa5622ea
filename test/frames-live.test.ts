// A live publisher that writes one block at a time into a Cluster it never closes (as GStreamer's
// matroskamux streamable=true and MediaRecorder do): each block reaches a player while that
// Cluster is still open, every piece a player gets is a self-contained Cluster of known size,
// and the recording decodes, keyframe first, with every frame that was written.
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { MKV_ID, MatroskaScanner, UNKNOWN_SIZE, encodeId, encodeUintElement, readId, readSize } from '@mkvcast/shared';
import { makeClip, probe, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { errorsIgnoringCut, stopQuietly } from './helpers/live.js';
import { openUpload, waitForPublished, type OpenUpload } from './helpers/ingest.js';

const NAME = 'frames';
/** A block that has not reached the player this long after its write fails the test (not a timing figure). */
const BLOCK_TIMEOUT_MS = 10_000;
const UNKNOWN_SIZE_8 = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** A clip's header elements and its first Cluster, child by child, read with the project's scanner. */
interface Parts {
  ebml: Buffer;
  elements: Buffer[];
  timestamp: number;
  /** The first Cluster's SimpleBlocks and BlockGroups, as in the file. */
  blocks: Buffer[];
  videoTrack: number;
}

async function clipParts(file: string): Promise<Parts> {
  const scanner = new MatroskaScanner();
  const parts: Parts = { ebml: Buffer.alloc(0), elements: [], timestamp: -1, blocks: [], videoTrack: 1 };
  for (const e of scanner.push(await readFile(file))) {
    if (e.kind === 'ebml') parts.ebml = e.bytes;
    else if (e.kind === 'element') parts.elements.push(e.bytes);
    else if (e.kind === 'cluster-start') {
      if (parts.timestamp >= 0) break;
      parts.timestamp = e.timestamp;
    } else if (e.kind === 'cluster-child' && (e.id === MKV_ID.SimpleBlock || e.id === MKV_ID.BlockGroup)) {
      parts.blocks.push(e.bytes);
    } else if (e.kind === 'cluster-end') break;
  }
  return parts;
}

/** The track and keyframe flag of a SimpleBlock (RFC 9559 §10.1: track VINT, int16, flags). */
function simpleBlockInfo(block: Buffer): { track: number; keyframe: boolean } {
  const id = readId(block, 0);
  const size = typeof id === 'number' ? id : readSize(block, id.length);
  assert.ok(typeof id !== 'number' && typeof size !== 'number' && id.value === MKV_ID.SimpleBlock, 'the clip has SimpleBlocks');
  const body = id.length + size.length;
  const track = readSize(block, body);
  assert.ok(typeof track !== 'number');
  return { track: track.value, keyframe: (block[body + track.length + 2]! & 0x80) !== 0 };
}

/** A player that keeps what it receives in memory (a few hundred KB here) and wakes waiters on each chunk. */
class Player {
  readonly chunks: Buffer[] = [];
  #bytes = Buffer.alloc(0);
  #waiters = new Set<() => void>();
  #req: http.ClientRequest;
  status = 0;

  constructor(url: string) {
    this.#req = http.get(url, { agent: false }, (res) => {
      this.status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => {
        this.chunks.push(chunk);
        this.#bytes = Buffer.concat([this.#bytes, chunk]);
        for (const wake of this.#waiters) wake();
      });
    });
    this.#req.on('error', () => undefined);
  }

  get bytes(): Buffer {
    return this.#bytes;
  }

  /** Resolves with where `needle` is in what was received (at or after `from`) once it is there. */
  async waitFor(needle: Buffer, from: number, what: string): Promise<number> {
    for (;;) {
      const at = this.#bytes.indexOf(needle, from);
      if (at >= 0) return at;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.#waiters.delete(wake);
          reject(new Error(`${what}: not received within ${BLOCK_TIMEOUT_MS} ms (player has ${this.#bytes.length} bytes)`));
        }, BLOCK_TIMEOUT_MS);
        const wake = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
      });
    }
  }

  close(): void {
    this.#req.destroy();
  }
}

/** The level-1 elements after the stream header: each must be a Cluster of known size whose first child is its Timestamp. */
function assertPieces(bytes: Buffer, from: number): number {
  let pieces = 0;
  let pos = from;
  while (pos < bytes.length) {
    const id = readId(bytes, pos);
    const size = typeof id === 'number' ? id : readSize(bytes, pos + id.length);
    if (typeof id === 'number' || typeof size === 'number') break; // the recording's cut tail
    assert.equal(id.value, MKV_ID.Cluster, `element at byte ${pos} is a Cluster`);
    assert.notEqual(size.value, UNKNOWN_SIZE, `the Cluster at byte ${pos} has a known size`);
    const body = pos + id.length + size.length;
    const first = readId(bytes, body);
    assert.ok(typeof first !== 'number' && first.value === MKV_ID.Timestamp, `the Cluster at byte ${pos} opens with its Timestamp`);
    pos = body + size.value;
    if (pos <= bytes.length) pieces++;
  }
  return pieces;
}

describe('a publisher writing one block at a time into a Cluster it never closes', () => {
  let master: RunningMaster | undefined;
  let upload: OpenUpload | undefined;
  let player: Player | undefined;
  let parts: Parts;
  /** How many blocks the player had received while the publisher's Cluster was still open. */
  let received = 0;
  /** Write to receive, per block, ms (reported, not asserted). */
  const latencies: number[] = [];
  let recording: ProbeResult;
  let firstCluster = -1;

  before(async () => {
    parts = await clipParts(await makeClip('webm-vp8-opus', { seconds: 2 }));
    // The clip's first Cluster opens with an audio block, then the video keyframe: they go
    // together, so that the player has a keyframe to start on.
    const key = parts.blocks.findIndex((b) => {
      const info = simpleBlockInfo(b);
      return info.track === parts.videoTrack && info.keyframe;
    });
    assert.ok(key >= 0 && key < 4, `the clip's first Cluster starts with a video keyframe (at block ${key})`);
    master = await startMaster(['--edges', '1']);
    upload = openUpload(master.url(`/live/${NAME}`), 120_000, 'PUT', { 'Content-Type': 'video/webm' });
    const clusterHead = Buffer.concat([encodeId(MKV_ID.Cluster), UNKNOWN_SIZE_8, encodeUintElement(MKV_ID.Timestamp, parts.timestamp)]);
    const segmentHead = Buffer.concat([encodeId(MKV_ID.Segment), UNKNOWN_SIZE_8]);
    await upload.write(Buffer.concat([parts.ebml, segmentHead, ...parts.elements, clusterHead, ...parts.blocks.slice(0, key + 1)]));
    await waitForPublished(master, NAME, upload.answer);
    player = new Player(master.url(`/live/${NAME}`));
    let from = await player.waitFor(parts.blocks[key]!, 0, 'the keyframe');
    received = key + 1;
    for (let i = key + 1; i < parts.blocks.length; i++) {
      const block = parts.blocks[i]!;
      const t0 = performance.now();
      await upload.write(block);
      from = await player.waitFor(block, from, `block ${i} of ${parts.blocks.length}`);
      latencies.push(performance.now() - t0);
      received = i + 1;
    }
    const scanner = new MatroskaScanner();
    firstCluster = scanner.push(player.bytes).find((e) => e.kind === 'cluster-start')?.offset ?? -1;
    const file = path.join(os.tmpdir(), `mkvcast-frames-${process.pid}.webm`);
    await writeFile(file, player.bytes);
    recording = await probe(file);
  });

  after(async () => {
    player?.close();
    upload?.end();
    await stopQuietly(master);
  });

  it('every block reached the player while the publisher\'s Cluster was still open', (t) => {
    assert.equal(player!.status, 200);
    assert.equal(received, parts.blocks.length);
    assert.ok(parts.blocks.length >= 50, `${parts.blocks.length} blocks in the clip's first Cluster`);
    const sorted = [...latencies].sort((a, b) => a - b);
    const at = (q: number): string => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1);
    t.diagnostic(`write → player receive, ${sorted.length} blocks, loopback, 1 edge: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`);
  });

  it('what the player got is the stream header, then self-contained Clusters of known size', () => {
    assert.ok(firstCluster > 0, 'the player got a Cluster');
    const pieces = assertPieces(player!.bytes, firstCluster);
    assert.ok(pieces >= parts.blocks.length - 4, `${pieces} pieces for ${parts.blocks.length} blocks written one by one`);
  });

  it('the recording decodes, starts on a video keyframe and holds every frame written', () => {
    assert.equal(errorsIgnoringCut(recording), '', 'decode errors');
    assert.equal(recording.firstVideoKey, true);
    assert.equal(recording.videoPackets + recording.audioPackets, parts.blocks.length);
  });
});
