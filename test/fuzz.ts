/**
 * `npm run fuzz -- --runs N [--seed S]`: runs the property-based tests
 * (packages/<pkg>/test/*.fuzz.test.ts) with N cases per property instead of
 * their small defaults under `npm test`, then prints how many cases ran.
 * Properties whose cases are costly (every truncation of an input) run a
 * stated share of N; see fuzzRuns() in packages/shared/test/fuzzing.ts.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

// Keep in step with FUZZ_CASES_PREFIX in packages/shared/test/fuzzing.ts.
const CASES_PREFIX = 'fuzz cases: ';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '10000' }, seed: { type: 'string' } },
});
const runs = Number(values.runs);
if (!Number.isSafeInteger(runs) || runs < 1) {
  console.error(`--runs must be a positive integer, got '${values.runs}'`);
  process.exit(2);
}
// The test files run in child processes, which inherit these.
process.env.FUZZ_RUNS = String(runs);
if (values.seed !== undefined) process.env.FUZZ_SEED = values.seed;

const root = fileURLToPath(new URL('../..', import.meta.url));
const packages = join(root, 'packages');
const files = readdirSync(packages).flatMap((pkg) => {
  const dir = join(packages, pkg, 'dist', 'test');
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith('.fuzz.test.js'))
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
});
if (files.length === 0) {
  console.error('no *.fuzz.test.js under packages/*/dist/test: run npm run build first');
  process.exit(2);
}

const started = Date.now();
let cases = 0;
let properties = 0;
let failed = 0;
const stream = run({ files, concurrency: 2 });
stream.on('test:diagnostic', (event: { message: string }) => {
  if (!event.message.startsWith(CASES_PREFIX)) return;
  cases += Number(event.message.slice(CASES_PREFIX.length));
  properties++;
});
stream.on('test:fail', () => {
  failed++;
});
const reporter = stream.compose(new spec());
reporter.pipe(process.stdout);
// After the reporter's last line, so that the count ends the output.
reporter.on('end', () => {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const verdict = failed === 0 ? 'all passed' : `${failed} failed`;
  console.log(`\nfuzz: ${cases} cases in ${properties} properties (${runs} runs each, less for costly ones), ${seconds} s, ${verdict}`);
  if (failed > 0) process.exitCode = 1;
});
