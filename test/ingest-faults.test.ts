// Publishers that misbehave end only their own stream: one that sends garbage from the first
// byte, one that turns to garbage after good Clusters, and one that stalls in the middle of a
// Cluster (cut off by --idle-timeout, the stream gone after --grace). A well-behaved stream
// published alongside plays on cleanly; the source and the edges survive.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { collect, collectWatching, frameMd5, probe, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertFramesSuffix, assertNoStack, getStats, request, stopQuietly, type Stats, waitFor } from './helpers/live.js';
import { chunkedUpload, clusterOffsets, makeDistinctClip, openUpload, stalledUpload, waitForPublished, type UploadResult } from './helpers/ingest.js';

const GOOD_SECONDS = 12;
const IDLE_S = 2;
const GRACE_S = 1;

describe('garbage and stalled publishers end only their own stream', () => {
  let master: RunningMaster | undefined;
  let goodClip: string;
  let badClip: Buffer;
  let goodUpload: Promise<UploadResult>;
  let goodPlayer: Promise<CollectResult>;
  let before_: Stats | undefined;

  before(async () => {
    goodClip = await makeDistinctClip(5, GOOD_SECONDS);
    badClip = await readFile(await makeDistinctClip(6, 8));
    // --no-ffmpeg: garbage that happened to look like MPEG-TS would otherwise go to an ffmpeg on PATH.
    master = await startMaster(['--edges', '2', '--grace', String(GRACE_S), '--idle-timeout', String(IDLE_S), '--no-ffmpeg']);
    const m = master;
    goodUpload = chunkedUpload(m.url('/live/good'), await readFile(goodClip), { seconds: GOOD_SECONDS, method: 'PUT' });
    await waitForPublished(m, 'good', goodUpload);
    goodPlayer = collect(m.url('/live/good'), { ms: GOOD_SECONDS * 1000 + 15_000 });
    before_ = await getStats(m);
  });

  after(() => stopQuietly(master));

  it('garbage from the first byte: an error answer (4xx), no stream', { timeout: 20_000 }, async () => {
    const m = master!;
    const reply = await request(m.url('/live/junk'), { method: 'PUT', body: randomBytes(256 * 1024), timeoutMs: 10_000 });
    assert.ok(reply.status >= 400 && reply.status < 500, `status ${reply.status}: ${reply.body.toString()}`);
    assert.match(reply.body.toString(), /junk|matroska|webm|EBML|corrupt/i, 'the answer says what is wrong');
    assert.equal((await request(m.url('/live/junk'))).status, 404);
  });

  it('good Clusters, then garbage: the publisher gets an error answer; its player is closed and decodes what it got', { timeout: 30_000 }, async () => {
    const m = master!;
    const clusters = clusterOffsets(badClip);
    assert.ok(clusters.length >= 4, `${clusters.length} Clusters in the clip`);
    const upload = openUpload(m.url('/live/broken'), 15_000);
    await upload.write(badClip.subarray(0, clusters[2]!.start));
    await waitForPublished(m, 'broken', upload.answer);
    const watching = collectWatching(m.url('/live/broken'), { ms: 15_000 });
    await watching.firstByte; // it has the good Clusters before the garbage comes
    // Zero bytes where the next element should start: 0x00 is no valid EBML ID or size (RFC 8794 §4).
    await upload.write(Buffer.alloc(64 * 1024));
    upload.end();
    const answer = await upload.answer;
    assert.ok(answer.status >= 400 && answer.status < 500, `answer to the broken upload: ${JSON.stringify(answer)}\nstderr:\n${m.stderr()}`);
    const got = await watching.result;
    assert.equal(got.status, 200);
    assert.equal(got.end, 'closed', `the player of the broken stream should be closed once it ends (${got.end})`);
    const p = await probe(got.file);
    assert.equal(p.errors, '', 'decode errors in what the player of the broken stream got');
    assert.equal(p.firstVideoKey, true);
    assert.equal((await request(m.url('/live/broken'))).status, 404, 'the broken stream is gone');
  });

  it('a publisher that sends half a Cluster and then nothing is cut off after --idle-timeout; after --grace its stream is gone (404)', { timeout: 30_000 }, async () => {
    const m = master!;
    const clusters = clusterOffsets(badClip);
    const half = clusters[2]!.start + Math.floor((clusters[2]!.end - clusters[2]!.start) / 2);
    const sentAt = performance.now();
    const upload = stalledUpload(m.url('/live/stall'), badClip.subarray(0, half), 20_000);
    await waitForPublished(m, 'stall', upload);
    const player = collect(m.url('/live/stall'), { ms: 20_000 });
    const answer = await upload;
    const cutS = answer.ms / 1000;
    assert.ok(cutS >= IDLE_S - 0.5 && cutS <= IDLE_S + 4, `the stalled publisher was cut after ${cutS.toFixed(1)} s (--idle-timeout ${IDLE_S}); answer ${JSON.stringify(answer)}\nstderr:\n${m.stderr()}`);
    assert.notEqual(answer.status, 200, `a stalled publisher is not a finished one: ${JSON.stringify(answer)}`);
    await waitFor('/live/stall to answer 404', async () => (await request(m.url('/live/stall'), { method: 'HEAD' })).status === 404, (GRACE_S + 4) * 1000)
      .catch((err: Error) => {
        throw new Error(`${err.message}\nstderr:\n${m.stderr()}`);
      });
    const goneS = (performance.now() - sentAt) / 1000;
    assert.ok(goneS <= IDLE_S + GRACE_S + 5, `gone ${goneS.toFixed(1)} s after the stall`);
    const got = await player;
    assert.equal(got.end, 'closed', 'its player is closed when the stream ends');
    const p = await probe(got.file);
    assert.equal(p.errors, '', 'what the player got before the stall decodes cleanly (no half Cluster)');
    assert.equal(p.firstVideoKey, true);
  });

  it('the good stream played on cleanly, to its end, and its publisher got 200', { timeout: 40_000 }, async () => {
    const upload = await goodUpload;
    assert.equal(upload.status, 200, `${JSON.stringify(upload)}\nstderr:\n${master?.stderr()}`);
    const got = await goodPlayer;
    assert.equal(got.status, 200);
    assert.equal(got.end, 'closed');
    const p: ProbeResult = await probe(got.file);
    assert.equal(p.errors, '', 'decode errors');
    assert.equal(p.firstVideoKey, true);
    assertFramesSuffix(await frameMd5(got.file), await frameMd5(goodClip), 'player of the good stream');
  });

  it('the master, the source and the edges are the same processes as before; no stack traces', async () => {
    const m = master!;
    const now = await getStats(m);
    assert.ok(before_);
    assert.equal(now.pids.source, before_.pids.source, 'the source was restarted');
    assert.deepEqual(now.pids.edges, before_.pids.edges, 'an edge was restarted');
    assert.equal(now.restarts ?? 0, 0, 'restarts');
    assertNoStack(m.stderr());
    assert.doesNotMatch(m.stderr(), /\b(died|restarting)\b/, m.stderr());
  });
});
