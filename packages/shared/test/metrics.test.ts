import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram } from '../src/latency.js';
import { aggregateMetrics, counterFrom, histogramFrom, labelledCounterFrom, labelledGaugeFrom, processRegistry } from '../src/metrics.js';

/** Value lines of the exposition, as "name{labels} value". */
const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

test("our metrics are summed over processes; Node's process metrics stay apart, labelled by process", async () => {
  const a = processRegistry();
  const b = processRegistry();
  let sentA = 100;
  labelledCounterFrom(a, 'mkvcast_bytes_sent_total', 'h', 'stream', () => ({ cam: sentA, tv: 5 }));
  labelledCounterFrom(b, 'mkvcast_bytes_sent_total', 'h', 'stream', () => new Map([['cam', 20]]));
  labelledGaugeFrom(a, 'mkvcast_players', 'h', 'stream', () => ({ cam: 2 }));
  labelledGaugeFrom(b, 'mkvcast_players', 'h', 'stream', () => ({ cam: 3 }));
  counterFrom(b, 'mkvcast_player_skips_total', 'h', () => 7);

  const scrape = async (): Promise<string[]> =>
    lines(await aggregateMetrics([
      { process: 'edge-1', metrics: await a.getMetricsAsJSON() },
      { process: 'edge-2', metrics: await b.getMetricsAsJSON() },
    ]));
  const first = await scrape();
  assert.ok(first.includes('mkvcast_bytes_sent_total{stream="cam"} 120'), first.join('\n'));
  assert.ok(first.includes('mkvcast_bytes_sent_total{stream="tv"} 5'));
  assert.ok(first.includes('mkvcast_players{stream="cam"} 5'));
  assert.ok(first.includes('mkvcast_player_skips_total 7'));
  for (const proc of ['edge-1', 'edge-2']) {
    assert.ok(first.some((l) => l.startsWith(`process_cpu_user_seconds_total{process="${proc}"}`)), `cpu of ${proc}`);
    // prom-client would omit this one when aggregating: labelled per process, it stays.
    assert.ok(first.some((l) => l.startsWith(`process_start_time_seconds{process="${proc}"}`)), `start time of ${proc}`);
  }
  assert.ok(!first.some((l) => l.startsWith('mkvcast_') && l.includes('process=')), 'our own metrics carry no process label');

  // Read at collect time: the next scrape sees the field's new value.
  sentA = 1000;
  assert.ok((await scrape()).includes('mkvcast_bytes_sent_total{stream="cam"} 1020'));
});

test('a LatencyHistogram becomes a cumulative Prometheus histogram in seconds, summed over processes', async () => {
  const one = new LatencyHistogram();
  const two = new LatencyHistogram();
  for (const ms of [0.5, 3, 3, 40, 2000]) one.record(ms);
  two.record(150);
  const r1 = processRegistry();
  const r2 = processRegistry();
  histogramFrom(r1, 'mkvcast_segment_latency_seconds', 'h', () => one);
  histogramFrom(r2, 'mkvcast_segment_latency_seconds', 'h', () => two);
  const text = await aggregateMetrics([
    { process: 'edge-1', metrics: await r1.getMetricsAsJSON() },
    { process: 'edge-2', metrics: await r2.getMetricsAsJSON() },
  ]);
  assert.match(text, /^# TYPE mkvcast_segment_latency_seconds histogram$/m);
  const got = lines(text).filter((l) => l.startsWith('mkvcast_segment_latency_seconds'));
  assert.deepEqual(got, [
    'mkvcast_segment_latency_seconds_bucket{le="0.001"} 1',
    'mkvcast_segment_latency_seconds_bucket{le="0.002"} 1',
    'mkvcast_segment_latency_seconds_bucket{le="0.005"} 3',
    'mkvcast_segment_latency_seconds_bucket{le="0.01"} 3',
    'mkvcast_segment_latency_seconds_bucket{le="0.02"} 3',
    'mkvcast_segment_latency_seconds_bucket{le="0.05"} 4',
    'mkvcast_segment_latency_seconds_bucket{le="0.1"} 4',
    'mkvcast_segment_latency_seconds_bucket{le="0.2"} 5',
    'mkvcast_segment_latency_seconds_bucket{le="0.5"} 5',
    'mkvcast_segment_latency_seconds_bucket{le="1"} 5',
    'mkvcast_segment_latency_seconds_bucket{le="+Inf"} 6',
    'mkvcast_segment_latency_seconds_sum 2.1965',
    'mkvcast_segment_latency_seconds_count 6',
  ]);
});

test('a value that is not a number is spelt NaN, as the exposition format has it', async () => {
  const a = processRegistry();
  counterFrom(a, 'mkvcast_player_skips_total', 'h', () => 0);
  labelledGaugeFrom(a, 'mkvcast_players', 'h', 'stream', () => ({ cam: Number.NaN }));
  const text = await aggregateMetrics([{ process: 'edge-1', metrics: await a.getMetricsAsJSON() }]);
  assert.ok(lines(text).includes('mkvcast_players{stream="cam"} NaN'), text);
  assert.doesNotMatch(text, / Nan$/m);
});
