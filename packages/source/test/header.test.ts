import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CorruptStreamError, MKV_ID } from '@mkvcast/shared';
import { withoutChildren } from '../src/header.js';
import { buildLiveHeader, InlineHeaderBuilder } from '../src/headerDecode.js';
import { PooledHeaderBuilder, type HeaderBuilder } from '../src/headerBuilder.js';

const b = (...bytes: number[]): Buffer => Buffer.from(bytes);

// EBML header: ID 1A45DFA3, size 0x88 (8), DocType 0x4282 size 0x84 "webm"
const EBML = b(0x1a, 0x45, 0xdf, 0xa3, 0x87, 0x42, 0x82, 0x84, 0x77, 0x65, 0x62, 0x6d);
// Info: ID 1549A966, size 0x8B (11)
//   TimestampScale 2AD7B1, size 0x83, 0x0F4240 (1 000 000)
//   Duration 4489, size 0x84, float 1.0e4 (0x461C4000)
const INFO = b(0x15, 0x49, 0xa9, 0x66, 0x8e, 0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40, 0x44, 0x89, 0x84, 0x46, 0x1c, 0x40, 0x00);
// Tracks: ID 1654AE6B, size 0x93 (19)
//   TrackEntry AE size 0x8A (10): TrackNumber D7 81 01, TrackType 83 81 01 (video), CodecID 86 82 "V8"
//   TrackEntry AE size 0x85 (5): TrackNumber D7 81 02, Void EC 80 (no type, no codec)
const TRACKS = b(
  0x16, 0x54, 0xae, 0x6b, 0x93,
  0xae, 0x8a, 0xd7, 0x81, 0x01, 0x83, 0x81, 0x01, 0x86, 0x82, 0x56, 0x38,
  0xae, 0x85, 0xd7, 0x81, 0x02, 0xec, 0x80,
);

test('withoutChildren drops Duration and rewrites the size', () => {
  const info = withoutChildren(INFO, new Set([MKV_ID.Duration]));
  // ID kept, size as an 8-byte VINT of 7 (0x01 00.. 07), then TimestampScale only
  assert.deepEqual(info, Buffer.concat([INFO.subarray(0, 4), b(0x01, 0, 0, 0, 0, 0, 0, 7), INFO.subarray(5, 12)]));
});

test('buildLiveHeader: EBML header, unknown-size Segment, Info without Duration, Tracks', () => {
  const header = buildLiveHeader(EBML, 'webm', new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, TRACKS]]));
  assert.equal(header.timestampScale, 1_000_000);
  assert.equal(header.videoTrack, 1);
  assert.deepEqual(header.tracks, [
    { number: 1, type: 'video', codec: 'V8', setup: '' },
    { number: 2, type: 'other', codec: 'unknown', setup: '' },
  ]);
  const segment = b(0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
  const info = withoutChildren(INFO, new Set([MKV_ID.Duration]));
  assert.deepEqual(header.bytes, Buffer.concat([EBML, segment, info, TRACKS]));
});

test('a header without Tracks or Info is a corrupt stream', () => {
  const code = (elements: Map<number, Buffer>) => {
    try {
      buildLiveHeader(EBML, 'webm', elements);
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };
  assert.equal(code(new Map([[MKV_ID.Info, INFO]])), 'MKV_ERR_CORRUPT_STREAM');
  assert.equal(code(new Map([[MKV_ID.Tracks, TRACKS]])), 'MKV_ERR_CORRUPT_STREAM');
});

// ---- the header build on worker threads ---------------------------------------------

// Tracks: ID 1654AE6B, size 0x94 (20)
//   TrackEntry AE size 0x92 (18): TrackNumber D7 81 01, TrackType 83 81 01 (video), CodecID 86 82 "V8",
//   DefaultDuration 23E383 size 0x84 = 0x01FCA055 (33 333 333 ns)
const TRACKS_DURATION = b(
  0x16, 0x54, 0xae, 0x6b, 0x94,
  0xae, 0x92, 0xd7, 0x81, 0x01, 0x83, 0x81, 0x01, 0x86, 0x82, 0x56, 0x38,
  0x23, 0xe3, 0x83, 0x84, 0x01, 0xfc, 0xa0, 0x55,
);
// Tags: ID 1254C367, size 0x85 (5): Tag 7373 size 0x82 (2): Void EC 80
const TAGS = b(0x12, 0x54, 0xc3, 0x67, 0x85, 0x73, 0x73, 0x82, 0xec, 0x80);
// Tracks: ID 1654AE6B, size 0x82 (2): a Void EC 80 and no TrackEntry
const NO_TRACKS = b(0x16, 0x54, 0xae, 0x6b, 0x82, 0xec, 0x80);
// Tracks: ID 1654AE6B, size 0x82 (2): 00 00, no valid child ID (node-ebml throws)
const UNDECODABLE_TRACKS = b(0x16, 0x54, 0xae, 0x6b, 0x82, 0x00, 0x00);

/** A size as a 4-byte VINT (RFC 8794 §4): 0x10 marker, then 28 bits. */
const size4 = (n: number): Buffer => b(0x10 | (n >>> 24), (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

/** Tracks with one VP8 track whose CodecPrivate (63A2) is `length` bytes: node-ebml takes tens of ms per MB. */
function bigTracks(length: number): Buffer {
  const entry = Buffer.concat([
    b(0xd7, 0x81, 0x01), //             TrackNumber 1
    b(0x83, 0x81, 0x01), //             TrackType 1 (video)
    b(0x86, 0x85, 0x56, 0x5f, 0x56, 0x50, 0x38), // CodecID "V_VP8"
    b(0x63, 0xa2), size4(length), //   CodecPrivate, then its bytes
    Buffer.alloc(length, 0x5a),
  ]);
  const trackEntry = Buffer.concat([b(0xae), size4(entry.length), entry]);
  return Buffer.concat([b(0x16, 0x54, 0xae, 0x6b), size4(trackEntry.length), trackEntry]);
}

function pool(t: { after: (fn: () => Promise<void>) => void }, options?: { idleTimeoutMs: number }): PooledHeaderBuilder {
  const builder = new PooledHeaderBuilder(options);
  t.after(() => builder.close());
  return builder;
}

/** How many times the event loop turned while `run` was in progress. */
async function loopTurnsDuring(run: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let running = true;
  const spin = (): void => {
    if (!running) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  await run();
  running = false;
  return turns;
}

test('the pool builds the header the in-process build does', async (t) => {
  const builder = pool(t);
  const elements = new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, TRACKS_DURATION], [MKV_ID.Tags, TAGS]]);
  const header = await builder.build(EBML, 'webm', elements);
  assert.deepEqual(header, buildLiveHeader(EBML, 'webm', elements));
  assert.deepEqual(header.defaultDurations, new Map([[1, 33_333_333]]));
});

test('a header that does not decode fails with a corrupt-stream error, in the pool as in this thread', async (t) => {
  const builders: HeaderBuilder[] = [pool(t), new InlineHeaderBuilder()];
  const cases: Array<[Map<number, Buffer>, RegExp]> = [
    [new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, NO_TRACKS]]), /declares no tracks/],
    [new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, UNDECODABLE_TRACKS]]), /undecodable header element/],
    [new Map([[MKV_ID.Info, INFO]]), /no Tracks element/],
  ];
  for (const builder of builders) {
    for (const [elements, message] of cases) {
      await assert.rejects(builder.build(EBML, 'webm', elements), (err: unknown) => {
        assert.ok(err instanceof CorruptStreamError, String(err));
        assert.equal(err.code, 'MKV_ERR_CORRUPT_STREAM');
        assert.match(err.message, message);
        return true;
      });
    }
  }
});

test('the pool has no thread while idle: one starts for a header and ends after the idle timeout', async (t) => {
  const builder = pool(t, { idleTimeoutMs: 50 });
  const elements = new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, TRACKS]]);
  assert.equal(builder.threads, 0, 'none before the first header');
  await builder.build(EBML, 'webm', elements);
  assert.equal(builder.threads, 1, 'one decoded it');
  // piscina's idle timer does not hold the process open; this does, while we wait on it.
  const open = setInterval(() => undefined, 1000);
  await builder.whenIdle();
  clearInterval(open);
  assert.equal(builder.threads, 0, 'none once idle');
  await builder.build(EBML, 'webm', elements);
  assert.equal(builder.threads, 1, 'a new one for the next header');
});

test('a big header is decoded while the event loop goes on', async (t) => {
  // 4 MiB of CodecPrivate: node-ebml takes tens of ms or more; in this thread not one turn of the loop happens meanwhile.
  const elements = new Map([[MKV_ID.Info, INFO], [MKV_ID.Tracks, bigTracks(4 << 20)]]);
  let inline;
  const inlineTurns = await loopTurnsDuring(async () => (inline = await new InlineHeaderBuilder().build(EBML, 'webm', elements)));
  assert.equal(inlineTurns, 0, 'the measure sees a stall');
  const builder = pool(t);
  let pooled;
  const pooledTurns = await loopTurnsDuring(async () => (pooled = await builder.build(EBML, 'webm', elements)));
  assert.ok(pooledTurns >= 10, `the loop turned ${pooledTurns} times while the pool decoded`);
  assert.deepEqual(pooled, inline);
});

test('the source\'s thread loads neither piscina nor node-ebml until a header is built, and node-ebml never', async () => {
  // A fresh process, as the source starts: which packages has it loaded (CommonJS ones show in require.cache)?
  const script = `
    const { createRequire } = await import('node:module');
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).filter((k) => /node_modules\\/(piscina|ebml)\\//.test(k)).map((k) => k.split('node_modules/')[1].split('/')[0]);
    await import(${JSON.stringify(new URL('../src/source.js', import.meta.url).href)});
    const atStart = [...new Set(loaded())];
    const { PooledHeaderBuilder } = await import(${JSON.stringify(new URL('../src/headerBuilder.js', import.meta.url).href)});
    const builder = new PooledHeaderBuilder();
    const b = (...x) => Buffer.from(x);
    await builder.build(b(${[...EBML].join(', ')}), 'webm', new Map([[${MKV_ID.Info}, b(${[...INFO].join(', ')})], [${MKV_ID.Tracks}, b(${[...TRACKS].join(', ')})]]));
    await builder.close();
    console.log(JSON.stringify({ atStart, afterHeader: [...new Set(loaded())].sort() }));
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
  assert.deepEqual(JSON.parse(stdout), { atStart: [], afterHeader: ['piscina'] });
});
