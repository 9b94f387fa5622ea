// Features loaded at first use, to keep idle processes small (docs/performance.md), still work:
// prom-client is loaded at the first scrape, yet /metrics lists every series it listed when it
// was loaded at start, and Node's GC and CPU figures count from the process's start.
// (JWT tokens, whose jose is loaded by the first check, are enforced in ops-hooks.test.ts.)
// Source and edges start with glibc limited to two malloc arenas, unless the environment
// already sets MALLOC_ARENA_MAX.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getStats, request, stopQuietly } from './helpers/live.js';
import { startMaster, type RunningMaster } from './helpers/server.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Every series family /metrics showed while prom-client was loaded at start. */
const FAMILIES = [
  'process_cpu_user_seconds_total', 'process_cpu_system_seconds_total', 'process_cpu_seconds_total', 'process_start_time_seconds',
  'process_resident_memory_bytes', 'process_virtual_memory_bytes', 'process_heap_bytes', 'process_open_fds', 'process_max_fds',
  'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_min_seconds', 'nodejs_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds', 'nodejs_eventloop_lag_p50_seconds', 'nodejs_eventloop_lag_p90_seconds', 'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources', 'nodejs_active_resources_total', 'nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_requests',
  'nodejs_active_requests_total', 'nodejs_heap_size_total_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes', 'nodejs_heap_space_size_used_bytes', 'nodejs_heap_space_size_available_bytes', 'nodejs_version_info',
  'nodejs_gc_duration_seconds', 'mkvcast_child_restarts_total', 'mkvcast_rejected_total', 'mkvcast_bytes_received_total', 'mkvcast_segments_total',
  'mkvcast_edge_links_dropped_total', 'mkvcast_streams', 'mkvcast_players', 'mkvcast_bytes_sent_total', 'mkvcast_player_skips_total',
  'mkvcast_player_kicks_total', 'mkvcast_connections', 'mkvcast_segment_latency_seconds',
];

/**
 * Run in a fresh node: makes a registry the way every process does, then a major GC and some CPU
 * before the first scrape, and reports what was loaded when and what the scrape said.
 */
const PROBE = `
import { createRequire } from 'node:module';
const require = createRequire(process.cwd() + '/');
const loaded = (name) => Object.keys(require.cache).some((p) => p.includes('/node_modules/' + name + '/'));
const shared = await import('@mkvcast/shared');
const registry = shared.processRegistry();
shared.counterFrom(registry, 'mkvcast_probe_total', 'h', () => 42);
const promAtStart = loaded('prom-client');
// GC entries reach observers a turn later, all observers in the same pass: wait for ours.
const { PerformanceObserver } = await import('node:perf_hooks');
const seen = new Promise((resolve) => {
  const observer = new PerformanceObserver(() => { observer.disconnect(); resolve(); });
  observer.observe({ entryTypes: ['gc'] });
});
globalThis.gc();
await seen;
const until = Date.now() + 100;
while (Date.now() < until);
const cpu = process.cpuUsage();
const json = await registry.getMetricsAsJSON();
const value = (name, labels = {}) => json.find((m) => m.name === name)?.values
  .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l) && (v.metricName ?? name) === name + (name.startsWith('nodejs_gc') ? '_count' : ''))
  .reduce((a, v) => a + v.value, 0);
console.log(JSON.stringify({
  promAtStart,
  promAfterScrape: loaded('prom-client'),
  majorGcs: value('nodejs_gc_duration_seconds', { kind: 'major' }),
  cpuBeforeScrapeS: (cpu.user + cpu.system) / 1e6,
  cpuS: value('process_cpu_seconds_total'),
  probe: value('mkvcast_probe_total'),
}));
`;

describe('prom-client loaded at the first scrape', () => {
  it('is not loaded before it; GC and CPU count from the process start; our counters read their fields', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', PROBE], {
      cwd: REPO_ROOT,
      timeout: 30_000,
    });
    const got = JSON.parse(stdout) as Record<string, number | boolean>;
    assert.equal(got.promAtStart, false, 'prom-client loaded before the first scrape');
    assert.equal(got.promAfterScrape, true);
    assert.ok((got.majorGcs as number) >= 1, `the major GC before the first scrape is counted: ${stdout}`);
    assert.ok((got.cpuS as number) >= (got.cpuBeforeScrapeS as number), `CPU used before the first scrape is counted: ${stdout}`);
    assert.equal(got.probe, 42);
  });
});

describe('/metrics of an idle master, first scrape', { timeout: 60_000 }, () => {
  let master: RunningMaster | undefined;
  before(async () => {
    master = await startMaster(['--edges', '2']);
  });
  after(() => stopQuietly(master));

  it('lists every series family, each process labelled', async () => {
    const reply = await request(master!.url('/metrics'));
    assert.equal(reply.status, 200, reply.body.toString());
    const text = reply.body.toString('utf8');
    const types = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]));
    for (const family of FAMILIES) {
      // Families whose values are all absent at rest (no stream yet) still print their TYPE line.
      assert.ok(types.has(family), `${family} missing from /metrics`);
    }
    for (const proc of ['master', 'source', 'edge-1', 'edge-2']) {
      assert.match(text, new RegExp(`^process_cpu_seconds_total\\{process="${proc}"\\} `, 'm'));
    }
  });
});

/** MALLOC_ARENA_MAX in each child's environment, as the kernel shows it. */
async function childArenas(master: RunningMaster): Promise<(string | undefined)[]> {
  const { pids } = await getStats(master);
  const children = [pids.source, ...pids.edges];
  return children.map((pid) => {
    assert.equal(typeof pid, 'number', `a child has no pid: ${JSON.stringify(pids)}`);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    return environ.find((v) => v.startsWith('MALLOC_ARENA_MAX='))?.slice('MALLOC_ARENA_MAX='.length);
  });
}

describe('malloc arenas of source and edges', { timeout: 60_000 }, () => {
  it('two by default, or what the environment says', async () => {
    const { MALLOC_ARENA_MAX: _, ...without } = process.env;
    for (const [env, want] of [[without, '2'], [{ ...without, MALLOC_ARENA_MAX: '5' }, '5']] as const) {
      let master: RunningMaster | undefined;
      try {
        master = await startMaster(['--edges', '2'], { env });
        assert.deepEqual(await childArenas(master), [want, want, want]);
      } finally {
        await stopQuietly(master);
      }
    }
  });
});
