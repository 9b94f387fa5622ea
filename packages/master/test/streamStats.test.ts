import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EdgeStats, SourceStreamStats } from '@mkvcast/shared';
import { StreamStatsTracker } from '../src/streamStats.js';

const source = (bytesIn: number): SourceStreamStats => ({
  name: 'cam',
  segments: 1,
  bytesIn,
  edges: 2,
  docType: 'webm',
  tracks: [{ number: 1, type: 'video', codec: 'V_VP8', setup: '', width: 320, height: 240 }],
  input: { kind: 'publisher', label: 'publisher 10.0.0.7:50312' },
});

const edge = (players: number, bytesOut: number): EdgeStats => ({
  type: 'edge-stats',
  players,
  playersByStream: { cam: players },
  bytesOut,
  bytesOutByStream: { cam: bytesOut },
  skips: 0,
  kicked: 0,
  rejected: 0,
  latency: { counts: [], max: 0, samples: 0 },
});

test('stream stats sum the edges and turn byte totals into bit rates per sample', () => {
  const tracker = new StreamStatsTracker();
  tracker.sample(0, [source(1000)], [edge(1, 0), null]);
  tracker.sample(2000, [source(126_000)], [edge(1, 125_000), edge(2, 250_000)]);
  const [stream] = tracker.streams(3000, [source(126_000)], [edge(1, 125_000), edge(2, 250_000)]);
  assert.equal(stream!.players, 3);
  assert.equal(stream!.bytesOut, 375_000);
  assert.equal(stream!.bitrateIn, 500_000, '125 000 bytes in 2 s');
  assert.equal(stream!.bitrateOut, 1_500_000, '375 000 bytes in 2 s');
  assert.equal(stream!.uptimeS, 3);
  assert.deepEqual(stream!.input, { kind: 'publisher', label: 'publisher 10.0.0.7:50312' });
});

test('a counter that starts again (a restarted source) gives no negative rate, and a gone stream starts afresh', () => {
  const tracker = new StreamStatsTracker();
  tracker.sample(0, [source(9000)], [edge(0, 0)]);
  tracker.sample(1000, [source(100)], [edge(0, 0)]);
  assert.equal(tracker.streams(1000, [source(100)], [edge(0, 0)])[0]!.bitrateIn, 0);
  tracker.sample(2000, [], [edge(0, 0)]);
  tracker.sample(5000, [source(100)], [edge(0, 0)]);
  assert.equal(tracker.streams(5000, [source(100)], [edge(0, 0)])[0]!.uptimeS, 0);
});
