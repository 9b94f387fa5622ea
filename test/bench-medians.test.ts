// The latency bench's --rounds summary: medians per configuration, and each round's CPU ratio
// taken against Icecast's run of the same round, not against another round's.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { latencyMedians, type LatencyRow } from '../bench/latency.js';

function row(server: 'mkvcast' | 'icecast', maxDelayMs: number | null, round: number, cpu: number, p99: number, keptUp = 1000): LatencyRow {
  return {
    type: 'latency', server, players: 1000, maxDelayMs, round, serverCpuSecondsPerGbit: cpu, keptUpLive: keptUp,
    e2eMs: { p50: p99 / 2, p99, max: p99 + 10, n: 100 },
  } as unknown as LatencyRow;
}

describe('latencyMedians', () => {
  it('pairs each mkvcast run with the Icecast run of its round, and takes medians over the rounds', () => {
    const rows = [
      row('mkvcast', 50, 1, 0.6, 60), row('icecast', null, 1, 1.5, 40),
      row('mkvcast', 50, 2, 0.5, 70), row('icecast', null, 2, 0.8, 45, 990),
      row('mkvcast', 50, 3, 0.4, 65, 999), row('icecast', null, 3, 1.0, 42),
    ];
    const [mk, ice] = latencyMedians(rows);
    assert.equal(mk!.server, 'mkvcast');
    assert.equal(mk!.rounds, 3);
    assert.deepEqual(mk!.cpuVsIcecast, { perRound: [0.4, 0.625, 0.4], median: 0.4 });
    assert.equal(mk!.cpuSecondsPerGbit, 0.5);
    assert.deepEqual(mk!.e2eMs, { p50: 32.5, p99: 65, max: 80 });
    assert.equal(mk!.keptUpLiveMin, 999);
    assert.equal(ice!.server, 'icecast');
    assert.equal(ice!.cpuVsIcecast, undefined);
    assert.equal(ice!.keptUpLiveMin, 990);
  });

  it('takes the mean of the two middle values over an even number of rounds', () => {
    const rows = [row('mkvcast', 70, 1, 0.4, 60), row('icecast', null, 1, 1.0, 40), row('mkvcast', 70, 2, 0.6, 80), row('icecast', null, 2, 1.0, 40)];
    const [mk] = latencyMedians(rows);
    assert.deepEqual(mk!.cpuVsIcecast, { perRound: [0.4, 0.6], median: 0.5 });
    assert.equal(mk!.e2eMs.p99, 70);
  });

  it('leaves out a round whose Icecast run failed', () => {
    const rows = [row('mkvcast', 0, 1, 0.6, 20), row('mkvcast', 0, 2, 0.5, 20), row('icecast', null, 2, 1.0, 30)];
    assert.deepEqual(latencyMedians(rows)[0]!.cpuVsIcecast, { perRound: [0.5], median: 0.5 });
  });
});
