// `npm run bench -- --idle` runs end to end on its tiny setting and prints, per run, the memory
// of every process of the server (master, source, each edge) and a summary per case. No memory
// bound is asserted: figures live in the benchmark, not in a test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const BENCH = fileURLToPath(new URL('../bench/bench.js', import.meta.url));
const CASES = ['no input', 'one looped input, no players'];

describe('bench --idle', () => {
  it('--tiny samples master, source and both edges in each case and prints a summary', { timeout: 120_000 }, async () => {
    // execFile's timeout sends SIGTERM: the bench then stops its servers and the test fails on the exit.
    const { stdout } = await promisify(execFile)(process.execPath, [BENCH, '--idle', '--tiny'], { timeout: 100_000 });
    const json = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const runs = json.filter((j) => j['type'] === 'idle-run');
    assert.deepEqual(runs.map((r) => r['case']), CASES);
    for (const run of runs) {
      const processes = run['processes'] as { role: string; pssBytes: number; privateBytes: number }[];
      assert.deepEqual(processes.map((p) => p.role).sort(), ['edge', 'edge', 'master', 'source'], `${String(run['case'])}: ${stdout}`);
      for (const p of processes) assert.ok(p.pssBytes > 0 && p.privateBytes > 0 && p.privateBytes <= p.pssBytes, JSON.stringify(p));
      assert.equal(run['pssBytes'], processes.reduce((a, p) => a + p.pssBytes, 0));
      // Pages counted once lie between the private sum and the RSS sum; null when PFNs cannot be read (not root).
      const alone = run['aloneBytes'] as number | null;
      if (alone !== null) assert.ok(alone >= (run['privateBytes'] as number), `alone ${alone} < private ${String(run['privateBytes'])}`);
    }
    const summary = json.at(-1)!;
    assert.equal(summary['mode'], 'idle');
    const cases = summary['cases'] as Record<string, { pssMiB: number; privateMiB: number; aloneMiB: number | null; runs: number }>;
    assert.deepEqual(Object.keys(cases), CASES);
    for (const c of Object.values(cases)) {
      assert.ok(c.pssMiB > 0 && c.privateMiB > 0 && c.runs === 1, JSON.stringify(c));
      assert.ok(c.aloneMiB === null || c.aloneMiB >= c.privateMiB, JSON.stringify(c));
    }
  });
});
