import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SegmentRing, type RingEntry } from '../src/ring.js';

const entry = (seq: number, ts: number, keyframe: boolean, size = 10): RingEntry => ({
  seq,
  ts,
  keyframe,
  bytes: new Uint8Array(size),
});

test('joinPoint starts at the newest keyframe, or burstMs back at an older one', () => {
  const ring = new SegmentRing({ maxAgeMs: 60_000, maxBytes: 1e9 });
  // seq:   0K  1   2   3K  4   5K  6
  // ts:    0   500 1000 2000 2500 4000 4500
  [[0, true], [500, false], [1000, false], [2000, true], [2500, false], [4000, true], [4500, false]].forEach(
    ([ts, key], seq) => ring.push(entry(seq, ts as number, key as boolean)),
  );
  assert.deepEqual(ring.joinPoint().map((e) => e.seq), [5, 6]);
  assert.deepEqual(ring.joinPoint(2000).map((e) => e.seq), [3, 4, 5, 6]);
  assert.deepEqual(ring.joinPoint(10_000).map((e) => e.seq), [0, 1, 2, 3, 4, 5, 6]);
});

test('no keyframe yet: nothing to join on', () => {
  const ring = new SegmentRing({ maxAgeMs: 60_000, maxBytes: 1e9 });
  ring.push(entry(0, 0, false));
  assert.deepEqual(ring.joinPoint(), []);
});

test('trims by age but keeps the newest GOP whole', () => {
  const ring = new SegmentRing({ maxAgeMs: 1000, maxBytes: 1e9 });
  ring.push(entry(0, 0, true));
  for (let seq = 1; seq <= 5; seq++) ring.push(entry(seq, seq * 1000, false));
  // 5 s past the only keyframe: still held, or no player could start.
  assert.equal(ring.entries()[0]!.seq, 0);
  ring.push(entry(6, 6000, true));
  ring.push(entry(7, 7500, false));
  assert.deepEqual(ring.entries().map((e) => e.seq), [6, 7]);
});

test('trims by bytes, even inside the newest GOP, and counts bytes held', () => {
  const ring = new SegmentRing({ maxAgeMs: 60_000, maxBytes: 100 });
  for (let seq = 0; seq < 20; seq++) ring.push(entry(seq, seq, seq === 0, 30));
  assert.ok(ring.bytes <= 100, `${ring.bytes} bytes held`);
  assert.equal(ring.bytes, ring.entries().length * 30);
  assert.equal(ring.newest!.seq, 19);
});

test('after(seq) gives what follows seq, undefined once seq+1 is gone', () => {
  const ring = new SegmentRing({ maxAgeMs: 60_000, maxBytes: 50 });
  for (let seq = 0; seq < 10; seq++) ring.push(entry(seq, seq, true, 10));
  const held = ring.entries().map((e) => e.seq);
  assert.deepEqual(held, [5, 6, 7, 8, 9]);
  assert.deepEqual(ring.after(7)!.map((e) => e.seq), [8, 9]);
  assert.deepEqual(ring.after(9), []);
  assert.equal(ring.after(2), undefined);
  assert.equal(ring.after(20), undefined);
});

test('stays bounded over a long run (compaction keeps indexes right)', () => {
  const ring = new SegmentRing({ maxAgeMs: 100, maxBytes: 1e9 });
  for (let seq = 0; seq < 10_000; seq++) ring.push(entry(seq, seq * 10, seq % 5 === 0));
  assert.ok(ring.size <= 12, `${ring.size} entries`);
  assert.deepEqual(ring.joinPoint().map((e) => e.seq), [9995, 9996, 9997, 9998, 9999]);
});

test('a trimmed Segment is released at once, not at the next compaction', async () => {
  // gc() without --expose-gc: the flag, then a fresh context that sees the function.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const ring = new SegmentRing({ maxAgeMs: 100, maxBytes: 1e9 });
  ring.push(entry(0, 0, true, 1024));
  const first = new WeakRef(ring.entries()[0]!.bytes);
  // Far fewer pushes than the 1024 trimmed slots that trigger a compaction.
  for (let seq = 1; seq < 50; seq++) ring.push(entry(seq, seq * 10, true));
  assert.ok(ring.entries()[0]!.seq > 0, 'the first entry was trimmed');
  // A WeakRef's target lives until the end of the job that made it.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  assert.equal(first.deref(), undefined, 'the trimmed bytes are still referenced');
});
