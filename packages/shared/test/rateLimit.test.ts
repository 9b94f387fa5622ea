import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimitedLog, TokenBucket } from '../src/auth/rateLimit.js';
import { Logger } from '../src/log.js';

test('a token bucket lets a burst through, then refills at its rate', () => {
  let now = 1000;
  const bucket = new TokenBucket(3, 2, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => bucket.take()), [true, true, true, false]);
  now += 499; // 0.998 of a token
  assert.equal(bucket.take(), false);
  now += 1;
  assert.equal(bucket.take(), true);
  now += 60_000; // never more than the burst
  assert.deepEqual([1, 2, 3, 4].map(() => bucket.take()), [true, true, true, false]);
});

test('a rate-limited log says how many lines it left out', () => {
  let now = 0;
  const lines: string[] = [];
  const log = new Logger('test', 'error');
  log.info = (text: string) => void lines.push(text);
  const limited = new RateLimitedLog(log, new TokenBucket(2, 1, () => now));
  for (let i = 0; i < 10; i++) limited.info(`refused ${i}`);
  assert.deepEqual(lines, ['refused 0', 'refused 1']);
  now += 1000;
  limited.info('refused 10');
  assert.deepEqual(lines, ['refused 0', 'refused 1', 'refused 10 (and 8 more like it not logged)']);
});
