// Checks the real-media helpers themselves: every clip kind is what its name promises.
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { before, describe, it } from 'node:test';
import { clipKinds, collect, frameMd5, makeClip, probe } from './helpers/media.js';
import type { ClipKind, ProbeResult } from './helpers/media.js';

// Matroska element IDs (RFC 9559), with their marker bits as written in the file.
const ID = {
  EBML: 0x1a45dfa3,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Info: 0x1549a966,
  Tracks: 0x1654ae6b,
  Cluster: 0x1f43b675,
  Cues: 0x1c53bb6b,
};

/** An EBML variable-size integer (RFC 8794 §4): marker bit position gives the length. */
function vint(buf: Buffer, off: number, keepMarker: boolean): { value: number; length: number; unknown: boolean } {
  const first = buf[off]!;
  const length = Math.clz32(first) - 23; // 0x80 → 1 … 0x01 → 8
  assert.ok(length >= 1 && length <= 8, `bad VINT at ${off}`);
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let i = 1; i < length; i++) {
    value = value * 256 + buf[off + i]!;
    if (buf[off + i] !== 0xff) allOnes = false;
  }
  return { value, length, unknown: !keepMarker && allOnes };
}

interface Element { id: number; start: number; dataStart: number; size: number | null }

function element(buf: Buffer, off: number): Element {
  const id = vint(buf, off, true);
  const size = vint(buf, off + id.length, false);
  return { id: id.value, start: off, dataStart: off + id.length + size.length, size: size.unknown ? null : size.value };
}

/** The EBML header, the Segment, and the Segment's children (which must all have sizes). */
function topLevel(buf: Buffer): { segment: Element; children: Element[] } {
  const ebml = element(buf, 0);
  assert.equal(ebml.id, ID.EBML);
  const segment = element(buf, ebml.dataStart + ebml.size!);
  assert.equal(segment.id, ID.Segment);
  const end = segment.size === null ? buf.length : segment.dataStart + segment.size;
  const children: Element[] = [];
  for (let off = segment.dataStart; off < end;) {
    const child = element(buf, off);
    assert.notEqual(child.size, null, `unknown-size child at ${off}`);
    children.push(child);
    off = child.dataStart + child.size!;
  }
  return { segment, children };
}

const codecs = (p: ProbeResult): string[] => p.streams.map((s) => `${s.codec_type}:${s.codec_name}`);

describe('media helpers', () => {
  const clips = new Map<ClipKind, string>();
  const probes = new Map<ClipKind, ProbeResult>();

  before(async () => {
    await Promise.all(clipKinds.map(async (kind) => {
      const file = await makeClip(kind);
      clips.set(kind, file);
      probes.set(kind, await probe(file));
    }));
  });

  it('every kind decodes cleanly and starts on a video keyframe', () => {
    for (const kind of clipKinds) {
      const p = probes.get(kind)!;
      assert.equal(p.errors, '', kind);
      assert.ok(p.audioPackets > 300, `${kind}: ${p.audioPackets} audio packets`);
      if (kind === 'audio-only') {
        assert.deepEqual(codecs(p), ['audio:opus']);
        assert.equal(p.firstVideoKey, null);
      } else {
        assert.equal(p.videoPackets, 200, `${kind}: 8 s at 25 fps`);
        assert.equal(p.firstVideoKey, true, kind);
      }
    }
    assert.deepEqual(codecs(probes.get('webm-vp8-opus')!), ['video:vp8', 'audio:opus']);
    assert.deepEqual(codecs(probes.get('mkv-h264-aac')!), ['video:h264', 'audio:aac']);
    assert.deepEqual(codecs(probes.get('piped-mkv')!), ['video:h264', 'audio:aac']);
    assert.equal(probes.get('webm-vp8-opus')!.videoKeyframes, 8, '-g 25');
    assert.equal(probes.get('piped-mkv')!.videoKeyframes, 4, '-g 50');
  });

  it('makeClip caches: a second call returns the same file', async () => {
    assert.equal(await makeClip('webm-vp8-opus'), clips.get('webm-vp8-opus'));
  });

  it('webm-vp8-opus is a seekable file: sized Segment, SeekHead, Cues', async () => {
    const buf = await readFile(clips.get('webm-vp8-opus')!);
    const { segment, children } = topLevel(buf);
    assert.equal(segment.dataStart + segment.size!, buf.length);
    const ids = new Set(children.map((c) => c.id));
    for (const id of [ID.SeekHead, ID.Info, ID.Tracks, ID.Cluster, ID.Cues]) assert.ok(ids.has(id), id.toString(16));
  });

  it('piped-mkv has an unknown-size Segment and clusters cut mid-GOP', async () => {
    const buf = await readFile(clips.get('piped-mkv')!);
    const ebml = element(buf, 0);
    const segmentAt = ebml.dataStart + ebml.size!;
    assert.equal(buf.readUInt32BE(segmentAt), ID.Segment);
    // An 8-byte size VINT with every value bit set means "unknown" (RFC 8794 §6.2).
    assert.equal(buf.readBigUInt64BE(segmentAt + 4), 0x01ffffffffffffffn);
    const clusters = topLevel(buf).children.filter((c) => c.id === ID.Cluster).length;
    assert.ok(clusters > probes.get('piped-mkv')!.videoKeyframes * 2, `${clusters} clusters`);
  });

  it('mkv-h264-aac has B-frames (pts differs from dts in framemd5)', async () => {
    const lines = await frameMd5(clips.get('mkv-h264-aac')!);
    const p = probes.get('mkv-h264-aac')!;
    assert.equal(lines.length, p.videoPackets + p.audioPackets);
    // framemd5 columns: stream_index, dts, pts, duration, size, hash
    const reordered = lines.map((l) => l.split(',').map((f) => f.trim())).filter((f) => f[0] === '0' && f[1] !== f[2]);
    assert.ok(reordered.length > 0);
    assert.deepEqual(await frameMd5(clips.get('mkv-h264-aac')!), lines);
  });

  it('webm-late-start begins at 20541 s', () => {
    const p = probes.get('webm-late-start')!;
    assert.ok(Math.abs(p.firstPtsS! - 20541) < 1, String(p.firstPtsS));
    assert.ok(Math.abs(probes.get('webm-vp8-opus')!.firstPtsS!) < 1);
  });

  it('collect stops at a byte limit, at a time limit, and at the end of the body', async () => {
    const clip = clips.get('webm-vp8-opus')!;
    const whole = await readFile(clip);
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'video/webm' });
      if (req.url === '/forever') {
        const timer = setInterval(() => res.write(whole.subarray(0, 1000)), 10);
        res.on('close', () => clearInterval(timer));
      } else {
        createReadStream(clip, { highWaterMark: 7000 }).pipe(res);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const part = await collect(`${base}/file`, { bytes: 10_000 });
      assert.equal(part.status, 200);
      assert.equal(part.end, 'bytes');
      assert.deepEqual(await readFile(part.file), whole.subarray(0, 10_000));

      const all = await collect(`${base}/file`);
      assert.equal(all.end, 'closed');
      assert.equal(all.headers['content-type'], 'video/webm');
      assert.equal(all.bytes, whole.length);
      assert.ok(all.firstByteMs !== null && all.firstByteMs >= 0);
      assert.equal((await probe(all.file)).errors, '');

      const timed = await collect(`${base}/forever`, { ms: 300 });
      assert.equal(timed.end, 'ms');
      assert.ok(timed.bytes > 5000 && timed.bytes < 40_000, String(timed.bytes));
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
