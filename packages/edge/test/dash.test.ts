// DASH segments cut on an edge, from hand-built Clusters: GOPs by media timestamps, the same
// bytes however the Clusters were chunked, a break drops the GOP in progress, the window follows
// its limits; and the codecs strings and paths.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dashPathOf } from '@mkvcast/shared';
import { blocksOf, segmentBytes } from '../src/dashBlocks.js';
import { codecsOf, parseDashHeader } from '../src/dashHeader.js';
import { DashStore } from '../src/dashStore.js';
import { AUDIO, VIDEO, av, blockGroup, cluster, clustersOf, header, simpleBlock, type B } from './clusters.js';

const LIMITS = { maxAgeMs: 60_000, maxBytes: 1 << 20 };

function feed(store: DashStore, clusters: Buffer[], perMessage = 1): void {
  for (let i = 0; i < clusters.length; i += perMessage) store.push(Buffer.concat(clusters.slice(i, i + perMessage)), 0);
}

describe('DASH segments from Clusters', () => {
  it('cuts a GOP at each video keyframe and publishes it once the next keyframe has come', () => {
    const store = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    // Starts mid-GOP at 500 ms: nothing before the keyframe at 1000 makes a segment.
    feed(store, clustersOf(av(4000, 1000, 500), 3));
    assert.deepEqual(store.segments().map((s) => [s.t, s.d]), [[1000, 1000], [2000, 1000], [3000, 1000]]);
    for (const s of store.segments()) {
      const blocks = blocksOf(s.bytes)!;
      assert.deepEqual([blocks[0]!.track, blocks[0]!.keyframe, blocks[0]!.time], [1, true, s.t], `segment ${s.t} opens on its keyframe`);
      assert.ok(blocks.every((b) => b.time >= s.t && b.time < s.t + s.d), `segment ${s.t} holds its GOP's blocks only`);
      assert.equal(blocks.length, 75, 'every block of the GOP: 25 video + 50 audio');
    }
  });

  it('gives the same bytes for the same t however the blocks were chunked into Clusters and messages', () => {
    const blocks = av(4000);
    const a = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    const b = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    feed(a, clustersOf(blocks, 1), 1);
    feed(b, clustersOf(blocks, 7), 3);
    assert.equal(a.segments().length, 3);
    assert.deepEqual(
      a.segments().map((s) => [s.t, s.etag]),
      b.segments().map((s) => [s.t, s.etag]),
    );
    for (const s of a.segments()) assert.ok(s.bytes.equals(b.segment(s.t)!.bytes), `t=${s.t}`);
  });

  it('a break in the Segments (a sequence gap) drops the GOP in progress: no segment is partial', () => {
    const store = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    const clusters = clustersOf(av(5000), 5);
    const cut = clusters.findIndex((c) => blocksOf(c)![0]!.time >= 2300);
    feed(store, clusters.slice(0, cut));
    store.break();
    // Some of 2000–3000 went missing; the rest arrives.
    feed(store, clusters.slice(cut + 2));
    assert.deepEqual(store.segments().map((s) => s.t), [0, 1000, 3000]);
    assert.equal(store.dropped, 1);
  });

  it('Clusters it cannot read count as a break', () => {
    const store = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    const clusters = clustersOf(av(3000), 4);
    feed(store, clusters.slice(0, 20));
    store.push(Buffer.from([0x1f, 0x43, 0xb6, 0x75, 0x40]), 0); // a Cluster ID, then a size it cannot read
    feed(store, clusters.slice(20));
    assert.ok(!store.segments().some((s) => s.t === 1000), 'the GOP the bad bytes fell in is not published');
    assert.equal(store.dropped, 1);
  });

  it('a block whose relative timecode would overflow int16 opens a new Cluster at its own time', () => {
    const blocks: B[] = [
      { time: 100, track: 1, key: true },
      { time: 30_000, track: 1, key: false },
      { time: 70_000, track: 1, key: false },
      { time: 80_000, track: 1, key: true },
    ];
    const store = new DashStore(header([VIDEO]), { maxAgeMs: 600_000, maxBytes: 1 << 20 });
    feed(store, clustersOf(blocks, 1));
    const segment = store.segment(100)!;
    const bytes = segment.bytes;
    // Two Clusters: Timestamp 100 (blocks at +0 and +29900), Timestamp 70000 (its block at +0).
    const timestamps: number[] = [];
    for (let i = 0; i + 4 < bytes.length; i++) {
      if (bytes.readUInt32BE(i) === 0x1f43b675) timestamps.push(Number(bytes.readBigUInt64BE(i + 4 + 8 + 2)));
    }
    assert.deepEqual(timestamps, [100, 70_000]);
    assert.deepEqual(blocksOf(bytes)!.map((b) => b.time), [100, 30_000, 70_000]);
  });

  it('blocks before media time 0 are left out: no Cluster Timestamp (unsigned) can hold them', () => {
    // A Cluster at 0 whose keyframe's relative timecode is -40, audio at -10 and 10; keyframes at 1000 and 2000.
    const store = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    store.push(cluster(0, simpleBlock(1, -40, true, 'k'), simpleBlock(2, -10, true, 'a'), simpleBlock(2, 10, true, 'b'), simpleBlock(1, 1000, true, 'k'), simpleBlock(1, 2000, true, 'k')), 0);
    assert.deepEqual(store.segments().map((s) => s.t), [1000]);
    assert.deepEqual(blocksOf(store.segment(1000)!.bytes)!.map((b) => b.time), [1000]);
  });

  it('BlockGroups: keyframe when no ReferenceBlock; timecodes rewritten inside them', () => {
    const c1 = cluster(1000, blockGroup(1, 0, true, 'k'), blockGroup(1, 40, false, 'p'));
    const c2 = cluster(1500, blockGroup(1, 500, true, 'k2'));
    const store = new DashStore(header([VIDEO]), LIMITS);
    store.push(Buffer.concat([c1, c2]), 0);
    const [segment] = store.segments();
    assert.deepEqual([segment!.t, segment!.d], [1000, 1000]);
    assert.deepEqual(blocksOf(segment!.bytes)!.map((b) => [b.time, b.keyframe]), [[1000, true], [1040, false]]);
  });

  it('audio-only streams: one segment per 2 s slot of timestamps, from the first slot seen whole', () => {
    const store = new DashStore(header([AUDIO]), LIMITS);
    const blocks: B[] = [];
    for (let t = 1500; t < 9000; t += 20) blocks.push({ time: t, track: 2, key: true });
    feed(store, clustersOf(blocks, 10));
    assert.deepEqual(store.segments().map((s) => [s.t, s.d]), [[2000, 2000], [4000, 2000], [6000, 2000]]);
  });

  it('the window keeps --buffer of media time, and at most --buffer-mb of bytes', () => {
    const byAge = new DashStore(header([VIDEO, AUDIO]), { maxAgeMs: 3000, maxBytes: 1 << 20 });
    feed(byAge, clustersOf(av(10_000), 5));
    assert.deepEqual(byAge.segments().map((s) => s.t), [6000, 7000, 8000]);
    const bytesPerGop = (() => {
      const s = new DashStore(header([VIDEO, AUDIO]), LIMITS);
      feed(s, clustersOf(av(2000), 5));
      return s.segments()[0]!.size;
    })();
    const byBytes = new DashStore(header([VIDEO, AUDIO]), { maxAgeMs: 600_000, maxBytes: Math.floor(bytesPerGop * 2.5) });
    feed(byBytes, clustersOf(av(10_000), 5));
    assert.deepEqual(byBytes.segments().map((s) => s.t), [7000, 8000]);
    // A GOP larger than the whole byte limit is dropped, never held.
    const tiny = new DashStore(header([VIDEO, AUDIO]), { maxAgeMs: 600_000, maxBytes: Math.floor(bytesPerGop / 2) });
    feed(tiny, clustersOf(av(5000), 5));
    assert.deepEqual(tiny.segments(), []);
    assert.ok(tiny.dropped >= 4);
  });

  it('timestamps that go back start a new window; a header with new codecs starts afresh', () => {
    const store = new DashStore(header([VIDEO, AUDIO]), LIMITS);
    feed(store, clustersOf(av(4000, 1000, 10_000), 5));
    assert.deepEqual(store.segments().map((s) => s.t), [10_000, 11_000, 12_000]);
    store.break();
    feed(store, clustersOf(av(3000), 5));
    assert.deepEqual(store.segments().map((s) => s.t), [0, 1000]);
    store.setHeader(header([VIDEO, AUDIO], 1));
    assert.deepEqual(store.segments().map((s) => s.t), [0, 1000], 'the same header keeps the window');
    store.setHeader(header([{ ...VIDEO, codec: 'V_VP9' }, AUDIO], 2));
    assert.deepEqual(store.segments(), []);
  });

  it('segmentBytes is a function of t and the blocks', () => {
    const blocks = blocksOf(Buffer.concat(clustersOf(av(1000), 4)))!;
    assert.ok(segmentBytes(0, blocks).equals(segmentBytes(0, blocksOf(Buffer.concat(clustersOf(av(1000), 9)))!)));
  });
});

describe('DASH header facts', () => {
  it('init segment: EBML header, unknown-size Segment, Info, Tracks; timescale from TimestampScale', () => {
    const h = parseDashHeader(header([VIDEO, AUDIO]));
    assert.equal(h.timescale, 1000);
    assert.equal(h.videoTrack, 1);
    assert.equal(h.mimeType, 'video/webm');
    assert.deepEqual(h.tracks.map((t) => t.codecs), ['vp8', 'opus']);
    assert.ok(h.init.equals(header([VIDEO, AUDIO]).bytes));
    assert.equal(parseDashHeader(header([AUDIO])).mimeType, 'audio/webm');
  });

  it('codecs strings from CodecID and CodecPrivate', () => {
    assert.equal(codecsOf('V_VP9', undefined), 'vp9');
    // VP9 features: profile (1) 0, level (2) 31, bit depth (3) 8.
    assert.equal(codecsOf('V_VP9', Buffer.from([1, 1, 0, 2, 1, 31, 3, 1, 8])), 'vp09.00.31.08');
    // avcC: version 1, profile 0x64 (High), constraints 0x00, level 0x1F (3.1).
    assert.equal(codecsOf('V_MPEG4/ISO/AVC', Buffer.from([1, 0x64, 0x00, 0x1f, 0xff])), 'avc1.64001F');
    // av1C: marker/version 0x81, profile 0 + level 8, tier 0 and 8-bit (0x0C: chroma subsampling bits only).
    assert.equal(codecsOf('V_AV1', Buffer.from([0x81, 0x08, 0x0c, 0x00])), 'av01.0.08M.08');
    assert.equal(codecsOf('A_VORBIS', undefined), 'vorbis');
    // AudioSpecificConfig 0x12 0x10: object type 2 (AAC LC).
    assert.equal(codecsOf('A_AAC', Buffer.from([0x12, 0x10])), 'mp4a.40.2');
  });
});

describe('DASH paths', () => {
  it('names the manifest, the init segment and media segments under a stream, nothing looser', () => {
    assert.deepEqual(dashPathOf('/live/cam/manifest.mpd'), { name: 'cam', resource: { kind: 'manifest' } });
    assert.deepEqual(dashPathOf('/live/cam/init.webm'), { name: 'cam', resource: { kind: 'init' } });
    assert.deepEqual(dashPathOf('/live/c.a_m~-/0.webm'), { name: 'c.a_m~-', resource: { kind: 'segment', t: 0 } });
    assert.deepEqual(dashPathOf('/live/cam/123456789012345.webm'), { name: 'cam', resource: { kind: 'segment', t: 123456789012345 } });
    for (const p of ['/live/cam', '/live/cam.webm', '/live/cam/', '/live/cam/01.webm', '/live/cam/-1.webm', '/live/cam/1.mkv', '/live/cam/1234567890123456.webm', '/live/a b/init.webm', '/live//init.webm', '/live/cam/x/init.webm', '/live/cam/manifest.mpd/', '/live/cam/init.webm?']) {
      assert.equal(dashPathOf(p), null, p);
    }
  });
});
