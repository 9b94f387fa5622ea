// An upload's request head is parsed once, by the edge, and travels with the connection
// through the master to the source. Here the head comes in pieces, the body starts in the
// write that ends the head (bytes the edge reads before the hand-off) and a chunk runs on
// past it, and only the head carries what the source needs: the key (Authorization), the
// pacing (X-Mkvcast-Realtime) and the framing (Transfer-Encoding: chunked). The player must
// get every frame from the first keyframe on, and the server count every byte sent.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { clusterOffsets, killAllTools } from './helpers/ingest.js';
import { assertFramesSuffix, stopQuietly, type Stats, waitFor, waitForStats, waitForStream } from './helpers/live.js';
import { collectWatching, frameMd5, makeClip, probe, type CollectResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';

const KEY = 'hunter2';
const NAME = 'seam';
/** Body bytes of the first chunk that come after the hand-off, in later writes. */
const CHUNK_TAIL = 4096;

/** A publisher on a bare socket: each write is flushed before the next starts. */
class RawPublisher {
  readonly socket: net.Socket;
  sent = 0;
  readonly answer: Promise<string>;

  constructor(port: number) {
    this.socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    this.socket.setNoDelay(true);
    const chunks: Buffer[] = [];
    this.socket.on('data', (c: Buffer) => chunks.push(c));
    // The server answers once the body is in and ends its side; this side ends then.
    this.socket.once('end', () => this.socket.end());
    this.answer = new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.once('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
  }

  async write(bytes: Buffer | string): Promise<void> {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    await new Promise<void>((resolve, reject) => this.socket.write(buf, (err) => (err ? reject(err) : resolve())));
    this.sent += buf.length;
  }
}

type StatsWithInput = Omit<Stats, 'streams'> & { streams?: { name: string; input: { label: string } | null }[] };

const chunk = (data: Buffer): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);

describe('an upload whose head comes in pieces and whose body starts in the write that ends it', () => {
  let master: RunningMaster | undefined;
  let player: CollectResult | undefined;
  let answer = '';
  let sent = 0;
  let inputLabel: string | undefined;
  let clip = '';

  before(async () => {
    clip = await makeClip('webm-vp8-opus', { seconds: 5 });
    const data = await readFile(clip);
    // The seam: the EBML header, Info, Tracks and half of the first Cluster (its keyframe
    // first) reach the edge with the head's end; the rest comes after the hand-off.
    const first = clusterOffsets(data)[0]!;
    const seam = first.start + Math.floor((first.end - first.start) / 2);
    master = await startMaster(['--edges', '2', '--publish-key', KEY, '--grace', '1']);
    const m = master;
    const publisher = new RawPublisher(m.port);
    const auth = Buffer.from(`source:${KEY}`).toString('base64');
    // Pauses between the head's pieces make separate reads likely; the test holds either way.
    const pieces = [
      `PUT /live/${NAME} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor`,
      `ization: Basic ${auth}\r\nX-Mkvcast-Real`,
      'time: 1\r\nContent-Type: video/webm\r\nTransfer-Encoding: chunked\r\n\r',
    ];
    for (const piece of pieces) {
      await publisher.write(piece);
      await sleep(20);
    }
    // The head's last byte, the first chunk's size line and the body up to the seam in one write;
    // the chunk declares CHUNK_TAIL bytes more than that write holds.
    await publisher.write(Buffer.concat([Buffer.from(`\n${(seam + CHUNK_TAIL).toString(16)}\r\n`), data.subarray(0, seam)]));
    await waitForStream(m, NAME, 10_000).catch((err: Error) => {
      throw new Error(`${err.message}\nstderr:\n${m.stderr()}`);
    });
    // Joined before the second keyframe has been sent: the player starts at the first.
    const watching = collectWatching(m.url(`/live/${NAME}`), { ms: 30_000 });
    await watching.firstByte;
    // Stats reach the master about once a second: wait for the stream's input to show there.
    const inputOf = (s: Stats): string | undefined => (s as StatsWithInput).streams?.find((x) => x.name === NAME)?.input?.label;
    inputLabel = inputOf(await waitForStats(m, `the input of '${NAME}'`, (s) => inputOf(s) !== undefined, 10_000));
    // The rest of the first chunk, then uneven chunks, each write splitting a chunk's framing.
    let rest = Buffer.concat([data.subarray(seam, seam + CHUNK_TAIL), Buffer.from('\r\n')]);
    for (let at = seam + CHUNK_TAIL, size = 3000; at < data.length; at += size, size = size === 3000 ? 9001 : 3000) {
      rest = Buffer.concat([rest, chunk(data.subarray(at, Math.min(at + size, data.length)))]);
    }
    rest = Buffer.concat([rest, Buffer.from('0\r\n\r\n')]);
    for (let at = 0, step = 0; at < rest.length; at += 5000 + step, step = (step + 777) % 4000) {
      await publisher.write(rest.subarray(at, at + 5000 + step));
    }
    sent = publisher.sent;
    answer = await Promise.race([
      publisher.answer,
      // Unref'd: the answer usually wins, and this timer must not hold the test process.
      sleep(30_000, undefined, { ref: false }).then(() => {
        publisher.socket.destroy();
        throw new Error(`no answer to the upload\nstderr:\n${m.stderr()}`);
      }),
    ]);
    player = await watching.result;
  });

  after(async () => {
    await stopQuietly(master);
    await killAllTools();
  });

  it('is let in by the key in its Authorization header and ends on the last chunk with 200', () => {
    assert.match(answer, /^HTTP\/1\.1 200 /, `answer: ${answer}\nstderr:\n${master?.stderr()}`);
    assert.match(answer, /stream 'seam' published/);
  });

  it('is paced, as its X-Mkvcast-Realtime header asks', () => {
    assert.match(inputLabel ?? '', /\(paced\)$/, `the stream's input: ${inputLabel}`);
  });

  it('gives a player every frame from the first keyframe on, decodable', async () => {
    assert.equal(player?.status, 200);
    const p = await probe(player!.file);
    assert.equal(p.errors, '', 'decode errors');
    assert.equal(p.firstVideoKey, true, 'the first video frame is a keyframe');
    const got = await frameMd5(player!.file);
    const want = await frameMd5(clip);
    assertFramesSuffix(got, want, 'the player');
    assert.equal(got.length, want.length, 'the player has every frame of the upload');
  });

  it('counts every byte the publisher sent, its head included', async () => {
    const line = await waitFor('the publisher\'s end line', () => /publisher 127\.0\.0\.1:\d+ left after [\d.]+ s, (\d+) bytes/.exec(master!.stderr()) ?? undefined, 10_000);
    assert.equal(Number(line[1]), sent);
  });
});
