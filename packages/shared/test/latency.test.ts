import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from '../src/latency.js';

test('percentiles are bucket upper bounds, max is exact, histograms merge', () => {
  const a = new LatencyHistogram();
  for (let i = 1; i <= 98; i++) a.record(0.4); // bucket 1 ms
  a.record(7.2); // bucket 8
  a.record(2500); // overflow
  assert.deepEqual(a.summary(), { samples: 100, p50: 1, p99: 8, max: 2500 });
  const b = new LatencyHistogram();
  for (let i = 0; i < 100; i++) b.record(30);
  b.add({ counts: a.counts, max: a.max, samples: a.samples });
  const merged = b.summary();
  assert.equal(merged.samples, 200);
  // 98 × 1 ms, 1 × 8 ms, 100 × 30 ms, 1 overflow: the 100th and the 198th samples are in the 30 ms bucket.
  assert.equal(merged.p50, 30);
  assert.equal(merged.p99, 30);
  assert.equal(merged.max, 2500);
});

test('a histogram rebuilt from counts knows its samples; merging an empty one changes nothing', () => {
  const a = new LatencyHistogram();
  for (let i = 0; i < 10; i++) a.record(i * 3);
  const copy = new LatencyHistogram([...a.counts], a.max);
  assert.deepEqual(copy.summary(), a.summary());
  const before = copy.summary();
  copy.add({ counts: new LatencyHistogram().counts, max: 0, samples: 0 });
  assert.deepEqual(copy.summary(), before);
});

test('an empty histogram reports zeros', () => {
  assert.deepEqual(new LatencyHistogram().summary(), { samples: 0, p50: 0, p99: 0, max: 0 });
});
