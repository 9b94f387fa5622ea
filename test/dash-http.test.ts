// WebM DASH from every edge, over real HTTP with --edges 2: the manifest is a dynamic MPD
// whose listed segments answer 200 with immutable caching and a strong ETag (304 on
// If-None-Match), a future one 404s with max-age=1; every segment opens on a video keyframe
// at its own t, init + segments decode with ffmpeg; both edges give the same bytes for the
// same t; audio-only streams cut 2 s slots; H.264 Matroska still gets a manifest.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { durationMs, fromEveryEdge, getManifest, maxAge, must, waitForSegments, type Listed, type Manifest } from './helpers/dash.js';
import { request, stopQuietly, waitFor, type Reply } from './helpers/live.js';
import { ffmpegPath, makeClip, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';

const EDGES = 2;
/** The server's default --buffer, in ms: the window. */
const WINDOW_MS = 10_000;

let master: RunningMaster;
let dir: string;

before(async () => {
  const [webm, audio, h264] = await Promise.all([
    makeClip('webm-vp8-opus', { seconds: 8 }),
    makeClip('audio-only', { seconds: 8 }),
    makeClip('mkv-h264-aac', { seconds: 8 }),
  ]);
  dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-dash-http-'));
  master = await startMaster([`cam=${webm}`, `aud=${audio}`, `avc=${h264}`, '--loop', '--edges', String(EDGES)]);
});

after(async () => {
  await stopQuietly(master);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A listed segment: two edges publish a GOP a moment apart, so a 404 from the slower one is retried a few times. */
async function getSegment(name: string, t: number): Promise<Reply> {
  return waitFor(`${name}/${t}.webm`, async () => {
    const reply = await request(master.url(`/live/${name}/${t}.webm`));
    return reply.status === 200 ? reply : undefined;
  }, 3000, 50);
}

/** Segments that follow each other without a hole, as many as the manifest lists at the end. */
function contiguous(segments: Listed[]): Listed[] {
  let from = segments.length - 1;
  while (from > 0 && segments[from - 1]!.t + segments[from - 1]!.d === segments[from]!.t) from--;
  return segments.slice(from);
}

async function decodes(name: string, init: Buffer, segments: Buffer[]): Promise<Awaited<ReturnType<typeof probe>>> {
  const file = path.join(dir, `${name}-${Math.random().toString(36).slice(2)}.webm`);
  await writeFile(file, Buffer.concat([init, ...segments]));
  return probe(file);
}

describe('WebM DASH (VP8 + Opus)', { timeout: 120_000 }, () => {
  let m: Manifest;
  before(async () => {
    m = await waitForSegments(master, 'cam', 4);
  });

  it('the manifest is a dynamic MPD: availability, publish time, window, update period, delay, WebM codecs; cached at most half a segment', async () => {
    const { mpd, reply, segments } = m;
    assert.equal(reply.headers['content-type'], 'application/dash+xml');
    assert.equal(mpd.name, 'MPD');
    assert.equal(mpd.attrs.xmlns, 'urn:mpeg:dash:schema:mpd:2011');
    assert.equal(mpd.attrs.type, 'dynamic');
    for (const a of ['availabilityStartTime', 'publishTime']) assert.ok(Number.isFinite(Date.parse(mpd.attrs[a] ?? '')), `${a}: ${mpd.attrs[a]}`);
    assert.ok(Math.abs(Date.parse(mpd.attrs.publishTime!) - Date.now()) < 10_000, 'publishTime is now');
    assert.equal(durationMs(mpd.attrs.timeShiftBufferDepth), WINDOW_MS, 'timeShiftBufferDepth is --buffer');
    const newestMs = segments[segments.length - 1]!.d;
    assert.ok(durationMs(mpd.attrs.minimumUpdatePeriod) > 0 && durationMs(mpd.attrs.minimumUpdatePeriod) <= 2 * newestMs);
    const delay = durationMs(mpd.attrs.suggestedPresentationDelay);
    assert.ok(delay > 0 && delay < WINDOW_MS, `suggestedPresentationDelay ${delay} ms within the window`);
    // The newest segment became available when its end arrived: availabilityStartTime + its end is about now.
    const last = segments[segments.length - 1]!;
    const availableAt = Date.parse(mpd.attrs.availabilityStartTime!) + last.t + last.d;
    assert.ok(Math.abs(availableAt - Date.now()) < 6000, `the newest segment's availability (${new Date(availableAt).toISOString()}) is about now`);
    const set = must(mpd, 'AdaptationSet');
    assert.equal(set.attrs.mimeType, 'video/webm');
    const template = must(set, 'SegmentTemplate');
    assert.deepEqual([template.attrs.initialization, template.attrs.media, template.attrs.timescale], ['init.webm', '$Time$.webm', '1000']);
    const rep = must(set, 'Representation');
    assert.equal(rep.attrs.codecs, 'vp8,opus');
    assert.deepEqual([rep.attrs.width, rep.attrs.height, rep.attrs.audioSamplingRate], ['320', '240', '48000']);
    assert.ok(Number(rep.attrs.bandwidth) > 100_000, `bandwidth ${rep.attrs.bandwidth}`);
    // 1 s GOPs (-g 25 at 25 fps): one segment each.
    for (const s of segments) assert.ok(Math.abs(s.d - 1000) <= 50, `segment ${s.t} lasts ${s.d} ms`);
    assert.ok(maxAge(reply.headers['cache-control']) * 1000 <= newestMs / 2, `manifest ${reply.headers['cache-control']}`);
  });

  it('listed segments: 200, video/webm, public immutable for the window, a strong ETag; 304 on If-None-Match; HEAD has no body', async () => {
    const etags = new Set<string>();
    for (const s of m.segments.slice(0, -1)) {
      const reply = await getSegment('cam', s.t);
      assert.equal(reply.headers['content-type'], 'video/webm');
      assert.match(String(reply.headers['cache-control']), /^public, max-age=\d+, immutable$/);
      assert.equal(maxAge(reply.headers['cache-control']), WINDOW_MS / 1000);
      const etag = String(reply.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/, 'a strong ETag');
      etags.add(etag);
      assert.equal(Number(reply.headers['content-length']), reply.body.length);
      const again = await request(master.url(`/live/cam/${s.t}.webm`), { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304);
      assert.equal(again.body.length, 0);
      assert.equal(again.headers.etag, etag);
      const other = await request(master.url(`/live/cam/${s.t}.webm`), { headers: { 'If-None-Match': '"something-else"' } });
      assert.equal(other.status, 200);
      const head = await request(master.url(`/live/cam/${s.t}.webm`), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(Number(head.headers['content-length']), reply.body.length);
    }
    assert.equal(etags.size, m.segments.length - 1, 'each segment its own ETag');
    const init = await request(master.url('/live/cam/init.webm'));
    assert.equal(init.status, 200);
    assert.match(String(init.headers.etag), /^"[A-Za-z0-9_-]+"$/);
    assert.equal((await request(master.url('/live/cam/init.webm'), { headers: { 'If-None-Match': String(init.headers.etag) } })).status, 304);
  });

  it('a segment not yet there, one never there, and an unknown stream: 404 with max-age=1 and the JSON error body', async () => {
    const last = m.segments[m.segments.length - 1]!;
    for (const url of [`/live/cam/${last.t + 600_000}.webm`, `/live/cam/${last.t + 1}.webm`, '/live/nosuch/manifest.mpd', '/live/nosuch/7.webm']) {
      const reply = await request(master.url(url));
      assert.equal(reply.status, 404, url);
      assert.equal(reply.headers['cache-control'], 'max-age=1', url);
      assert.equal(reply.headers['content-type'], 'application/json');
      const body = JSON.parse(reply.body.toString()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'MKV_ERR_SEGMENT_NOT_FOUND', url);
    }
    const put = await request(master.url(`/live/cam/${last.t}.webm`), { method: 'PUT', body: Buffer.from('x') });
    assert.equal(put.status, 405);
    assert.equal(put.headers.allow, 'GET, HEAD');
  });

  it('every segment opens on a video keyframe at its own t, and init + segments in a row decode without an error', async () => {
    const now = await getManifest(master, 'cam');
    const run = contiguous(now.segments).slice(0, 6);
    assert.ok(run.length >= 3, `segments in a row: ${JSON.stringify(now.segments)}`);
    const init = (await request(master.url('/live/cam/init.webm'))).body;
    const bodies: Buffer[] = [];
    for (const s of run) {
      const body = (await getSegment('cam', s.t)).body;
      bodies.push(body);
      const alone = await decodes('cam', init, [body]);
      assert.equal(alone.errors, '', `segment ${s.t} alone`);
      assert.equal(alone.firstVideoKey, true, `segment ${s.t} opens on a keyframe`);
      assert.equal(alone.firstPtsS, s.t / 1000, `segment ${s.t}'s first packet is at t`);
      assert.ok(alone.videoPackets >= 24 && alone.audioPackets >= 40, `segment ${s.t} holds its whole GOP: ${alone.videoPackets} video, ${alone.audioPackets} audio packets`);
    }
    const all = await decodes('cam', init, bodies);
    assert.equal(all.errors, '');
    assert.equal(all.videoKeyframes, run.length);
  });

  it(`both edges give the same bytes and ETag for the same t`, async () => {
    const t = m.segments[m.segments.length - 2]!.t;
    const byEdge = await fromEveryEdge(() => getSegment('cam', t), EDGES);
    assert.deepEqual([...byEdge.keys()].sort(), ['1', '2'], 'both edges answered');
    const [a, b] = [...byEdge.values()];
    assert.ok(a!.body.equals(b!.body), 'byte-identical');
    assert.equal(a!.headers.etag, b!.headers.etag);
  });
});

describe('audio-only WebM DASH', { timeout: 60_000 }, () => {
  it('audio/webm, opus, 2 s slots by timestamp, decodable', async () => {
    const m = await waitForSegments(master, 'aud', 2);
    const set = must(m.mpd, 'AdaptationSet');
    assert.equal(set.attrs.mimeType, 'audio/webm');
    assert.equal(must(set, 'Representation').attrs.codecs, 'opus');
    for (const s of m.segments) {
      assert.equal(Math.floor(s.t / 2000) + 1, Math.floor((s.t + s.d) / 2000), `segment ${s.t}+${s.d} is one 2 s slot`);
    }
    const init = (await request(master.url('/live/aud/init.webm'))).body;
    const run = contiguous(m.segments);
    const bodies = await Promise.all(run.map(async (s) => (await getSegment('aud', s.t)).body));
    const result = await decodes('aud', init, bodies);
    assert.equal(result.errors, '');
    assert.ok(result.audioPackets > 50 * run.length, `${result.audioPackets} packets`);
  });

  it("ffmpeg's DASH demuxer reads its manifest (one track: one Representation is one stream to it) and decodes 3 s", async () => {
    const { stdout, stderr } = await promisify(execFile)(ffmpegPath, [
      '-nostdin', '-v', 'error', '-i', master.url('/live/aud/manifest.mpd'), '-t', '3', '-f', 'framemd5', '-',
    ], { timeout: 30_000 });
    assert.equal(stderr, '');
    const frames = stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    assert.ok(frames >= 140, `${frames} Opus frames of 20 ms in 3 s`);
  });
});

describe('H.264 Matroska DASH', { timeout: 60_000 }, () => {
  it('still gets a manifest: video/x-matroska, avc1.PPCCLL from CodecPrivate, mp4a.40.2; segments decode', async () => {
    const m = await waitForSegments(master, 'avc', 2);
    const set = must(m.mpd, 'AdaptationSet');
    assert.equal(set.attrs.mimeType, 'video/x-matroska');
    assert.match(must(set, 'Representation').attrs.codecs ?? '', /^avc1\.[0-9A-F]{6},mp4a\.40\.2$/);
    const init = (await request(master.url('/live/avc/init.webm'))).body;
    const s = m.segments[0]!;
    const result = await decodes('avc', init, [(await getSegment('avc', s.t)).body]);
    assert.equal(result.errors, '');
    assert.equal(result.firstVideoKey, true);
  });
});

describe('the DASH window follows --buffer', { timeout: 60_000 }, () => {
  it('--buffer 3: timeShiftBufferDepth PT3S, and the listed segments span at most 3 s once more has passed', async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    const short = await startMaster([`cam=${clip}`, '--loop', '--buffer', '3']);
    try {
      const first = await waitForSegments(short, 'cam', 1);
      const since = first.segments[0]!.t;
      // 6 s of media later the window has been trimmed a few times over.
      const m = await waitFor('segments 6 s after the first', async () => {
        const now = await getManifest(short, 'cam');
        return now.segments.some((s) => s.t >= since + 6000) ? now : undefined;
      }, 30_000, 200);
      assert.equal(durationMs(m.mpd.attrs.timeShiftBufferDepth), 3000);
      const [a, z] = [m.segments[0]!, m.segments[m.segments.length - 1]!];
      assert.ok(z.t + z.d - a.t <= 3000, `listed: ${JSON.stringify(m.segments)}`);
      assert.ok(a.t > since, 'the oldest segments left the window');
      const gone = await request(short.url(`/live/cam/${since}.webm`));
      assert.equal(gone.status, 404, 'a segment out of the window is gone');
    } finally {
      await stopQuietly(short);
    }
  });
});
