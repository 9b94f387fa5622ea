// The bench script runs end to end on a tiny configuration and prints parseable JSON with the
// fields the performance report relies on. No timing is asserted here: timings live in the
// benchmark (npm run bench), which is too slow and too machine-dependent for a test.
// npm test runs this file on its own, after the others, and its runs one after another: each
// run loads the machine, and the other tests' players must not compete with it (nor it with them).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('../bench/bench.js', import.meta.url));
const RUN_TIMEOUT_MS = 60_000;

interface BenchRun {
  code: number | null;
  stderr: string;
  /** Every stdout line that is a JSON object, parsed. */
  json: Record<string, unknown>[];
}

function runBench(args: string[]): Promise<BenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BENCH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // SIGTERM lets the bench stop its servers; the test fails on the missing exit code.
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const json = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      resolve({ code, stderr, json });
    });
  });
}

const isNumber = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);
const isNumberOrNull = (x: unknown): boolean => x === null || isNumber(x);

function checkRun(run: Record<string, unknown>, why: string): void {
  assert.equal(run['error'], undefined, `${why}: ${String(run['error'])}`);
  for (const key of ['players', 'deliveredGbps', 'serverCpuPct', 'peakRssMB', 'idleRssMB', 'perPlayerRssBytes', 'loadgenCpuPct']) {
    assert.ok(isNumber(run[key]), `${why}: ${key} = ${String(run[key])}`);
  }
  assert.ok(isNumberOrNull(run['keptUp']), why);
  assert.ok(isNumberOrNull(run['serverCpuSecondsPerGbit']), why);
  assert.equal(typeof run['loadgenSaturated'], 'boolean', why);
  const ttfb = run['ttfbMs'] as Record<string, unknown>;
  assert.ok(isNumberOrNull(ttfb['p50']) && isNumberOrNull(ttfb['p99']) && isNumberOrNull(ttfb['max']), why);
  assert.ok(isNumber(run['loadgenCrowdCpuPct']), why);
  const connect = run['connectMs'] as Record<string, unknown>;
  assert.ok(isNumber(connect['p50']) && isNumber(connect['p99']) && isNumber(connect['max']), `${why}: connectMs`);
  // The kernel's listen-queue counters: read from /proc on Linux, null elsewhere.
  const tcp = run['tcp'] as Record<string, unknown> | null;
  if (tcp !== null) for (const key of ['listenOverflows', 'listenDrops', 'synRetrans']) assert.ok(isNumber(tcp[key]), `${why}: tcp.${key}`);
  assert.equal(run['ok200'], run['players'], `${why}: every player got a 200`);
}

function runsAndSummary(result: BenchRun): { runs: Record<string, unknown>[]; summary: Record<string, unknown> } {
  assert.equal(result.code, 0, result.stderr);
  const summary = result.json.at(-1)!;
  assert.equal(summary['type'], 'summary', result.stderr);
  return { runs: result.json.filter((j) => j['type'] === 'run'), summary };
}

describe('npm run bench', () => {
  it('--tiny measures mkvcast alone and prints a JSON line per run and a summary', { timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
    const { runs, summary } = runsAndSummary(await runBench(['--tiny']));
    assert.equal(runs.length, 1);
    assert.equal(runs[0]!['server'], 'mkvcast');
    checkRun(runs[0]!, 'mkvcast');
    assert.equal(summary['vs'], null);
    assert.deepEqual(summary['ratios'], []);
    assert.deepEqual(summary['failed'], []);
  });

  it('--tiny --vs icecast measures Icecast too, or says why not', { timeout: RUN_TIMEOUT_MS + 10_000 }, async (t) => {
    const { runs, summary } = runsAndSummary(await runBench(['--tiny', '--vs', 'icecast']));
    for (const run of runs) checkRun(run, String(run['server']));
    if (summary['vs'] === null) {
      // No icecast2 here (or no icecast:// in ffmpeg): mkvcast alone, and the reason given.
      assert.equal(typeof summary['vsSkipped'], 'string');
      assert.deepEqual(runs.map((r) => r['server']), ['mkvcast']);
      t.diagnostic(`Icecast not measured: ${String(summary['vsSkipped'])}`);
      return;
    }
    assert.deepEqual(runs.map((r) => r['server']), ['mkvcast', 'icecast']);
    assert.ok(isNumber(runs[1]!['publisherCpuPct']), 'the publisher is reported apart');
    const ratios = summary['ratios'] as Record<string, unknown>[];
    assert.equal(ratios.length, 1);
    for (const key of ['keptUp', 'deliveredGbps', 'cpuSecondsPerGbit', 'peakRss', 'perPlayerRss', 'ttfbP50', 'ttfbP99', 'loadgenCpu']) {
      assert.ok(key in ratios[0]!, `ratio ${key} missing`);
    }
  });

  it('--streams spreads the players over that many looped streams', { timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
    const { runs } = runsAndSummary(await runBench(['--tiny', '--streams', '3', '--players', '12']));
    assert.equal(runs.length, 1);
    // Every player got a 200: there is no stream "live", only live1 … live3.
    checkRun(runs[0]!, 'mkvcast');
    assert.equal((runs[0]!['details'] as Record<string, unknown>)['streams'], 3);
  });

  it('--crowd splits the players over two load generators and adds their reports up', { timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
    const { runs } = runsAndSummary(await runBench(['--tiny', '--crowd', '41']));
    assert.equal(runs.length, 1);
    checkRun(runs[0]!, 'mkvcast');
    assert.equal(runs[0]!['players'], 41);
    assert.equal(runs[0]!['loadgens'], 2);
  });

  it('--latency --tiny reports write-to-receive latency, kept-up players and join points', { timeout: RUN_TIMEOUT_MS + 10_000 }, async (t) => {
    const result = await runBench(['--latency', '--tiny', '--players', '10', '--duration-s', '3']);
    const { summary } = runsAndSummary(result);
    assert.equal(summary['mode'], 'latency');
    const rows = result.json.filter((j) => j['type'] === 'latency');
    const spreadOk = (s: Record<string, unknown>): boolean => isNumber(s['p50']) && isNumber(s['p99']) && isNumber(s['max']) && (s['n'] as number) > 0;
    for (const row of rows) {
      const why = String(row['server']);
      checkRun(row, why);
      assert.ok(spreadOk(row['e2eMs'] as Record<string, unknown>), `${why}: e2eMs ${JSON.stringify(row['e2eMs'])}`);
      assert.equal(row['sampled'], 10, why);
      assert.ok((row['sampledReceiving'] as number) > 0, why);
      assert.ok(isNumber(row['keptUpLive']), why);
      assert.ok(isNumber(row['publisherCpuPct']), `${why}: the publisher is reported apart`);
    }
    assert.equal(rows[0]!['server'], 'mkvcast');
    const join = rows[0]!['join'] as Record<string, Record<string, Record<string, unknown>>>;
    for (const mode of ['newest', 'next']) assert.ok(spreadOk(join[mode]!['behindMs']!), `join ${mode}: ${JSON.stringify(join[mode])}`);
    if (summary['vs'] === null) {
      assert.equal(typeof summary['vsSkipped'], 'string');
      assert.equal(rows.length, 1);
      t.diagnostic(`Icecast not measured: ${String(summary['vsSkipped'])}`);
    } else {
      assert.deepEqual(rows.map((r) => r['server']), ['mkvcast', 'icecast']);
    }
  });

  it('--ingest --tiny reports scanner, segmenter and IPC speeds', { timeout: RUN_TIMEOUT_MS + 10_000 }, async () => {
    const result = await runBench(['--ingest', '--tiny']);
    assert.equal(result.code, 0, result.stderr);
    const line = result.json.find((j) => j['type'] === 'ingest');
    assert.ok(line, result.stderr);
    for (const key of ['scannerMBps', 'scannerSegmenterMBps']) assert.ok(isNumber(line[key]) && (line[key] as number) > 0, key);
    const input = line['input'] as Record<string, unknown>;
    assert.ok((input['clusters'] as number) > 0);
    const ipc = line['ipc'] as Record<string, unknown>[];
    assert.deepEqual(ipc.map((r) => r['segmentBytes']), [256 * 1024, 1024 * 1024]);
    for (const r of ipc) assert.ok(isNumber(r['gbps']) && (r['gbps'] as number) > 0);
  });
});
