// Paced uploads and the uploads that cannot work: `curl -T clip.webm '…?realtime=1'` plays as
// a live broadcast (a player joining 3 s in gets the rest at the clip's pace), a plain upload
// still goes in as fast as it can, souphttpclientsink's one PUT per buffer is refused with
// what to use instead (and a bounded log), and a CodecID padded with NUL shows trimmed.
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ffmpegPath, makeClip } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { logMessages, request, stopQuietly, waitForStream } from './helpers/live.js';
import { CURL, killAllTools, liveList, packetPts, startTool, toolExit, type Tool } from './helpers/ingest.js';

const CLIP_SECONDS = 10;
const JOIN_AFTER_MS = 3000;

interface TimedBody {
  file: string;
  bytes: number;
  /** ms from the request to the first body byte, and to the last. */
  firstMs: number;
  lastMs: number;
  /** ms from the request until half of the body had come. */
  halfMs: number;
}

/** GETs a live stream until the server closes it (or `limitMs`), noting when its bytes came. */
async function timedBody(url: string, limitMs: number): Promise<TimedBody> {
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'mkvcast-pace-')), 'body.webm');
  const out = createWriteStream(file);
  const t0 = performance.now();
  // (time, bytes so far) of every chunk; the clip is ~10 s at ~500 kbit/s, a few hundred chunks.
  const arrivals: [number, number][] = [];
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`GET ${url}: ${res.statusCode}`));
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (arrivals.length < 100_000) arrivals.push([performance.now() - t0, bytes]);
        out.write(chunk);
      });
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('error', reject);
    setTimeout(() => req.destroy(), limitMs).unref();
    req.on('close', resolve);
  });
  await new Promise<void>((resolve) => out.end(resolve));
  assert.ok(arrivals.length > 0, `GET ${url}: no body`);
  const half = arrivals.find(([, b]) => b >= bytes / 2)!;
  return { file, bytes, firstMs: arrivals[0]![0], lastMs: arrivals.at(-1)![0], halfMs: half[0] };
}

/** `curl -T file url`: the real client the README shows (on PATH here and in CI). */
function curlUpload(file: string, url: string, headers: string[] = []): Tool {
  return startTool(CURL!, ['-sS', '-o', '-', '-w', '\n%{http_code} %{time_total}\n', ...headers.flatMap((h) => ['-H', h]), '-T', file, url]);
}

/** curl's status and seconds, from the -w line. */
function curlResult(tool: Tool): { status: number; seconds: number } {
  const match = /(\d{3}) ([\d.]+)\s*$/.exec(tool.output());
  assert.ok(match, `no status line from curl:\n${tool.output()}`);
  return { status: Number(match[1]), seconds: Number(match[2]) };
}

describe('curl -T uploads', { skip: CURL ? false : 'curl is not on PATH' }, () => {
  let clip: string;
  let master: RunningMaster | undefined;

  before(async () => {
    clip = await makeClip('webm-vp8-opus', { seconds: CLIP_SECONDS });
    master = await startMaster(['--edges', '1', '--grace', '1', '--ffmpeg', ffmpegPath]);
  });
  after(async () => {
    await killAllTools();
    await stopQuietly(master);
  });

  it('?realtime=1 plays as a live broadcast: a player joining 3 s in gets the rest at the clip\'s pace', async () => {
    const m = master!;
    const upload = curlUpload(clip, m.url('/live/paced?realtime=1'));
    await waitForStream(m, 'paced', 8000);
    // The scenario itself: a player that comes 3 s after the broadcast started.
    await sleep(JOIN_AFTER_MS);
    const player = await timedBody(m.url('/live/paced'), CLIP_SECONDS * 1000 + 15_000);
    await toolExit(upload, 'curl', 20_000);
    const { status, seconds } = curlResult(upload);
    assert.equal(status, 200, upload.output());
    // The answer comes when the last piece is out: the whole clip's time.
    assert.ok(seconds >= CLIP_SECONDS - 2, `a paced upload of a ${CLIP_SECONDS} s clip took ${seconds} s`);
    // The rest of the clip (~7 s) comes over ~7 s, not at once: its second half after the first.
    const spread = player.lastMs - player.firstMs;
    assert.ok(spread >= 5500, `the player's bytes came over ${spread.toFixed(0)} ms`);
    assert.ok(player.halfMs - player.firstMs >= 2000, `half of the player's bytes came ${(player.halfMs - player.firstMs).toFixed(0)} ms after the first`);
    // Its media starts near 3 s into the clip (the keyframe before the join: 1 s GOPs).
    const pts = [...(await packetPts(player.file)).values()].find((s) => s.type === 'video')!.pts;
    assert.ok(pts.length > 0, 'the player got no video');
    const first = Math.min(...pts);
    assert.ok(first >= 1.5 && first <= 4.5, `the player's video starts at ${first} s of the clip`);
    assert.ok(logMessages(m.stderr()).some((l) => /publisher .* connected, paced by its timestamps/.test(l)), m.stderr());
  });

  it('X-Mkvcast-Realtime: 1 paces as ?realtime=1 does', async () => {
    const m = master!;
    const upload = curlUpload(clip, m.url('/live/header'), ['X-Mkvcast-Realtime: 1']);
    await toolExit(upload, 'curl', 25_000);
    const { status, seconds } = curlResult(upload);
    assert.equal(status, 200, upload.output());
    assert.ok(seconds >= CLIP_SECONDS - 2, `a paced upload of a ${CLIP_SECONDS} s clip took ${seconds} s`);
  });

  it('without realtime=1 the upload goes in as fast as it arrives', async () => {
    const m = master!;
    const upload = curlUpload(clip, m.url('/live/fast'));
    await toolExit(upload, 'curl', 20_000);
    const { status, seconds } = curlResult(upload);
    assert.equal(status, 200, upload.output());
    assert.ok(seconds < CLIP_SECONDS / 2, `an upload without realtime=1 took ${seconds} s`);
  });

  it('a paced upload outlasting --idle-timeout is not cut off: the wait is the pacer\'s, not the publisher\'s', async () => {
    // Audio only: the whole clip (~60 KB) is in the server after one read, then paced for 10 s.
    const audio = await makeClip('audio-only', { seconds: CLIP_SECONDS });
    const m = await startMaster(['--edges', '1', '--grace', '1', '--idle-timeout', '2']);
    try {
      const upload = curlUpload(audio, m.url('/live/quiet?realtime=1'));
      await toolExit(upload, 'curl', 25_000);
      const { status, seconds } = curlResult(upload);
      assert.equal(status, 200, `${upload.output()}\n${m.stderr()}`);
      assert.ok(seconds >= CLIP_SECONDS - 2, `a paced upload of a ${CLIP_SECONDS} s clip took ${seconds} s`);
    } finally {
      await stopQuietly(m);
    }
  });

  it('a realtime value that is no switch is a bad request', async () => {
    const reply = await request(master!.url('/live/odd?realtime=maybe'), { method: 'PUT', body: Buffer.alloc(0) });
    assert.equal(reply.status, 400);
    assert.match(reply.body.toString(), /realtime must be 1 or 0/);
  });
});

describe('uploads that cannot carry a stream', () => {
  const SOUP = 'GStreamer souphttpclientsink libsoup/3.4.4';
  const PUTS = 60;
  let master: RunningMaster | undefined;
  let clip: Buffer;

  before(async () => {
    clip = await readFile(await makeClip('webm-vp8-opus', { seconds: 2 }));
    master = await startMaster(['--edges', '1', '--grace', '1']);
  });
  after(async () => {
    await stopQuietly(master);
  });

  it("souphttpclientsink's one PUT per buffer is refused with what to use instead, in a bounded log", async () => {
    const m = master!;
    // What souphttpclientsink sends: the stream headers first, then each buffer in a PUT of its own.
    const step = Math.floor(clip.length / PUTS);
    const answers: { status: number; body: string }[] = [];
    for (let i = 0; i < PUTS; i++) {
      const piece = clip.subarray(i * step, (i + 1) * step);
      const headers: Record<string, string> = { 'User-Agent': SOUP, 'Content-Type': 'video/webm' };
      if (i > 0) headers['Content-Range'] = `bytes ${i * step}-${(i + 1) * step - 1}/*`;
      const reply = await request(m.url('/live/soup'), { method: 'PUT', headers, body: piece });
      answers.push({ status: reply.status, body: reply.body.toString() });
    }
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 400, `PUT ${i}: ${a.body}`);
      assert.match(a.body, /MKV_ERR_UPLOAD_UNSTREAMABLE/);
      assert.match(a.body, /one request per buffer.*shout2send.*curl/, `PUT ${i}: ${a.body}`);
    }
    // The same pieces under another User-Agent: the Content-Range past byte 0 gives them away.
    const other = await request(m.url('/live/soup2'), {
      method: 'PUT',
      headers: { 'Content-Range': `bytes ${step}-${2 * step - 1}/*` },
      body: clip.subarray(step, 2 * step),
    });
    assert.equal(other.status, 400, other.body.toString());
    assert.match(other.body.toString(), /starts mid-stream.*shout2send/);
    // No stream came of it.
    assert.deepEqual((await liveList(m.url(''))).streams.map((s) => s.name), []);
    await stopQuietly(m);
    const lines = logMessages(m.stderr()).filter((l) => l.includes('soup') || l.includes('MKV_ERR_UPLOAD_UNSTREAMABLE'));
    // RefusalLog: 5 lines a window, then one summary of the rest.
    assert.ok(lines.length <= 6, `${lines.length} log lines for ${PUTS + 1} refused PUTs:\n${lines.join('\n')}`);
    assert.ok(lines.some((l) => /more refusals \(MKV_ERR_UPLOAD_UNSTREAMABLE\)/.test(l)), lines.join('\n'));
  });
});

/**
 * The clip with its video CodecID padded as webmmux writes it ("V_VP8\0"): one zero octet
 * more, and the sizes of the TrackEntry, Tracks and Segment around it one larger, each
 * rewritten in the width it has (RFC 8794 §4: a vint may be wider than it needs; ffmpeg
 * writes master sizes so). The source drops SeekHead and Cues, whose offsets now miss by one.
 */
function padCodecId(file: Buffer): Buffer {
  const segment = file.indexOf(Buffer.from([0x18, 0x53, 0x80, 0x67]));
  assert.ok(segment > 0, 'no Segment in the clip');
  // Tracks among the Segment's children (the SeekHead before it names its ID too).
  let tracks = segment + 4 + vint(file, segment + 4).width;
  while (file.readUInt32BE(tracks) !== 0x1654ae6b) {
    const idWidth = vint(file, tracks).width; // an element ID is vint-coded too (Void: 0xEC)
    const size = vint(file, tracks + idWidth);
    tracks += idWidth + size.width + size.value;
    assert.ok(tracks < file.length - 4, 'no Tracks in the Segment');
  }
  // Walk the TrackEntries (ID 0xAE) to the one whose CodecID is V_VP8.
  const tracksSize = vint(file, tracks + 4);
  const end = tracks + 4 + tracksSize.width + tracksSize.value;
  const codecId = Buffer.from([0x86, 0x85, ...Buffer.from('V_VP8')]);
  for (let entry = tracks + 4 + tracksSize.width; entry < end; ) {
    assert.equal(file[entry], 0xae, `a Tracks child at byte ${entry} is no TrackEntry`);
    const size = vint(file, entry + 1);
    const body = entry + 1 + size.width;
    const codec = file.subarray(body, body + size.value).indexOf(codecId);
    if (codec >= 0) {
      const at = body + codec;
      const out = Buffer.concat([file.subarray(0, at + codecId.length), Buffer.from([0x00]), file.subarray(at + codecId.length)]);
      out[at + 1] = 0x86; // CodecID size 6: "V_VP8" and one zero octet
      for (const sizeAt of [entry + 1, tracks + 4, segment + 4]) growSize(out, sizeAt);
      return out;
    }
    entry = body + size.value;
  }
  throw new Error('no TrackEntry with CodecID V_VP8');
}

/** The EBML vint at `at` (RFC 8794 §4): its value and width in octets. */
function vint(buf: Buffer, at: number): { value: number; width: number } {
  const width = Math.clz32(buf[at]!) - 23;
  let value = buf[at]! & (0xff >> width);
  for (let i = 1; i < width; i++) value = value * 256 + buf[at + i]!;
  return { value, width };
}

/** Adds one to the vint size at `at`, in the width it has; an unknown size (all ones) stays. */
function growSize(buf: Buffer, at: number): void {
  const { value, width } = vint(buf, at);
  if (value === 2 ** (7 * width) - 1) return;
  assert.ok(value + 1 < 2 ** (7 * width) - 1, `the size at byte ${at} has no room in its ${width} octets`);
  let rest = value + 1;
  for (let i = width - 1; i > 0; i--) {
    buf[at + i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  buf[at] = (0x80 >> (width - 1)) | rest;
}

describe('a CodecID padded with NUL (GStreamer webmmux)', () => {
  let master: RunningMaster | undefined;
  after(async () => {
    await killAllTools();
    await stopQuietly(master);
  });

  it('shows trimmed in /live/', { skip: CURL ? false : 'curl is not on PATH' }, async () => {
    const source = await readFile(await makeClip('webm-vp8-opus', { seconds: 4 }));
    const padded = padCodecId(source);
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'mkvcast-pace-')), 'padded.webm');
    await writeFile(file, padded);
    master = await startMaster(['--edges', '1', '--grace', '1']);
    const m = master;
    const upload = curlUpload(file, m.url('/live/padded?realtime=1'));
    await waitForStream(m, 'padded', 8000);
    const stream = (await liveList(m.url(''))).streams.find((s) => s.name === 'padded');
    assert.ok(stream, 'no stream padded in /live/');
    assert.deepEqual(stream.tracks.map((t) => t.codec).sort(), ['A_OPUS', 'V_VP8']);
    await toolExit(upload, 'curl', 15_000);
  });
});
