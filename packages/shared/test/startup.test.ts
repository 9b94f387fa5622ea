import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { STARTUP_V8_FLAG } from '../src/startup.js';

/**
 * Run in a fresh node started as the master starts its children: a hot function before and
 * after optimizeFromNowOn(), with V8 tracing what it optimizes (on stdout).
 */
const PROBE = `
const { optimizeFromNowOn } = await import(${JSON.stringify(new URL('../src/startup.js', import.meta.url).href)});
function work(n) { let s = 0; for (let i = 0; i < 1000; i++) s += (n * i) % 7; return s; }
function later(n) { let s = 0; for (let i = 0; i < 1000; i++) s += (n * i) % 5; return s; }
let sum = 0;
for (let i = 0; i < 20000; i++) sum += work(i);
console.log('--- optimizeFromNowOn ---');
optimizeFromNowOn();
for (let i = 0; i < 20000; i++) sum += later(i);
console.log('done', sum > 0);
`;

test('with the startup flag nothing is optimized until optimizeFromNowOn(), then hot code is', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [STARTUP_V8_FLAG, '--trace-opt', '--input-type=module', '-e', PROBE], {
    timeout: 30_000,
  });
  const [before, after] = stdout.split('--- optimizeFromNowOn ---');
  assert.ok(after !== undefined, stdout);
  assert.doesNotMatch(before!, /completed optimizing/, 'optimized while starting');
  assert.match(after!, /completed optimizing.*<JSFunction (later|work)/, `nothing optimized after optimizeFromNowOn():\n${after}`);
});
