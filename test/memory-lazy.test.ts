// Features loaded at first use, to keep idle processes small (docs/performance.md), still work:
// prom-client is loaded at the first scrape, yet /metrics lists every series it listed when it
// was loaded at start, and Node's GC and CPU figures count from the process's start.
// (JWT tokens, whose jose is loaded by the first check, are enforced in ops-hooks.test.ts.)
// No process runs V8's optimizing compiler while it starts, and each runs it once started.
// An idle server passes no stats around (they go out only when they change), yet /stats' uptime moves on.
// Source and edges start with glibc limited to two malloc arenas, unless the environment
// already sets MALLOC_ARENA_MAX. No process maps a native addon at rest; an edge loads sockopt
// with its first player.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getStats, request, stopQuietly, waitFor, waitForStream } from './helpers/live.js';
import { makeClip } from './helpers/media.js';
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

/** The native addons (*.node files) a process has mapped. */
function addons(pid: number): string[] {
  const files = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((line) => line.trim().split(/\s+/)[5] ?? '');
  return [...new Set(files.filter((f) => f.endsWith('.node')).map((f) => path.basename(f)))];
}

/** Resolves once the first bytes of the stream's body arrive; the player stays connected until `close`. */
function firstBytes(url: string): Promise<{ close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = get(url, (res) => {
      res.once('data', () => resolve({ close: () => req.destroy() }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
}

describe('native addons loaded at first use', { timeout: 90_000 }, () => {
  it('no process maps one at rest; an edge loads sockopt for its first player', async (t) => {
    // A lone node that loads a native addon keeps about 3.7 MiB more of the node binary resident.
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    const master = await startMaster([clip, '--loop', '--name', 'x', '--edges', '2']);
    try {
      await waitForStream(master, 'x');
      const { pids } = await getStats(master);
      for (const pid of [pids.master, pids.source, ...pids.edges]) {
        assert.deepEqual(addons(pid as number), [], `process ${pid} maps an addon at rest`);
      }
      try {
        createRequire(import.meta.url).resolve('sockopt');
      } catch {
        t.skip('sockopt is not installed here: edges keep the system\'s send buffer size');
        return;
      }
      const player = await firstBytes(master.url('/live/x'));
      try {
        await waitFor('an edge to load sockopt', () => pids.edges.some((pid) => addons(pid as number).includes('sockopt.node')), 10_000);
      } finally {
        player.close();
      }
    } finally {
      await stopQuietly(master);
    }
  });
});

describe("V8's optimizing compiler", { timeout: 90_000 }, () => {
  it('optimizes nothing while the four processes start', async () => {
    // No input: a source given one starts it once ready, and may optimize from then on.
    // --trace-opt is inherited by the children, and every process traces to the same stdout.
    const master = await startMaster(['--edges', '2'], { nodeArgs: ['--trace-opt'], captureStdout: true });
    try {
      // The listening line comes once source and edges are ready; a stats round trip through an
      // edge lets the traces written before it arrive.
      await getStats(master);
      const atStart = master.stdout();
      assert.doesNotMatch(atStart, /completed optimizing/, `optimized while starting:\n${atStart.slice(0, 2000)}`);
    } finally {
      await stopQuietly(master);
    }
  });

  it('optimizes hot code once they have started', async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    const master = await startMaster([clip, '--loop', '--name', 'x', '--edges', '2'], { nodeArgs: ['--trace-opt'], captureStdout: true });
    try {
      await waitForStream(master, 'x');
      const player = await firstBytes(master.url('/live/x'));
      try {
        await waitFor('hot code to be optimized', () => /completed optimizing/.test(master.stdout()), 30_000);
      } finally {
        player.close();
      }
    } finally {
      await stopQuietly(master);
    }
  });
});

/** Write system calls a process has made so far (/proc/PID/io). */
function writeCalls(pid: number): number {
  return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
}

describe('stats of an idle server', { timeout: 60_000 }, () => {
  it('the source sends none while nothing changes; /stats still counts the uptime', async () => {
    const master = await startMaster(['--edges', '2']);
    try {
      const { pids } = await getStats(master);
      const source = pids.source as number;
      // It sends its first stats with its ready message, before the master's listening line.
      const before = writeCalls(source);
      const uptime = async (): Promise<number> => ((await getStats(master)) as unknown as { uptimeS: number }).uptimeS;
      const first = await uptime();
      // Each tick of the uptime is a second in which the source would have sent its stats.
      await waitFor('/stats to count 3 more seconds of uptime', async () => (await uptime()) >= first + 3, 15_000);
      assert.equal(writeCalls(source), before, 'the idle source wrote (sent its unchanged stats)');
    } finally {
      await stopQuietly(master);
    }
  });
});
