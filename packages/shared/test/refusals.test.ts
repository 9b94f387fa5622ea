import assert from 'node:assert/strict';
import { once } from 'node:events';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { Logger } from '../src/log.js';
import { RefusalLog } from '../src/refusals.js';

interface Line {
  msg: string;
  reason?: string;
  suppressed?: number;
}

/**
 * The summary timer is unref'd (it must not keep a server alive): a bounded,
 * ref'd wait keeps the test's event loop up while it comes.
 */
async function within<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`nothing within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A JSON logger whose lines are kept, and announced as they come. */
function collected(): { log: Logger; lines: Line[]; events: EventEmitter } {
  const lines: Line[] = [];
  const events = new EventEmitter();
  const log = new Logger('edge-1', {
    format: 'json',
    sink: {
      write(text) {
        const line = JSON.parse(text) as Line;
        lines.push(line);
        events.emit('line', line);
      },
    },
  });
  return { log, lines, events };
}

test('a flood of one reason logs the first few, then one summary with the count', async () => {
  const { log, lines, events } = collected();
  const refusals = new RefusalLog(log, { limit: 3, windowMs: 2000 });
  const summary = new Promise<Line>((resolve) => events.on('line', (l: Line) => l.suppressed !== undefined && resolve(l)));
  for (let i = 0; i < 500; i++) refusals.refuse('MKV_ERR_STREAM_NOT_FOUND', `404 for /live/nope${i}`, { ip: '127.0.0.1' });
  assert.equal(lines.length, 3, 'only the first three before the window ends');
  assert.deepEqual(lines.map((l) => l.msg), ['404 for /live/nope0', '404 for /live/nope1', '404 for /live/nope2']);
  const line = await within(summary);
  assert.equal(line.suppressed, 497);
  assert.equal(line.reason, 'MKV_ERR_STREAM_NOT_FOUND');
  assert.match(line.msg, /^… and 497 more refusals \(MKV_ERR_STREAM_NOT_FOUND\) in the last \d+ s$/);
  assert.equal(lines.length, 4);
});

test('each reason has its own allowance', () => {
  const { log, lines } = collected();
  const refusals = new RefusalLog(log, { limit: 2, windowMs: 60_000 });
  for (let i = 0; i < 10; i++) {
    refusals.refuse('MKV_ERR_STREAM_NOT_FOUND', 'not found');
    refusals.refuse('MKV_ERR_SERVER_FULL', 'full');
  }
  assert.deepEqual(lines.map((l) => l.msg), ['not found', 'full', 'not found', 'full']);
  refusals.flush();
  assert.deepEqual(
    lines.slice(4).map((l) => [l.reason, l.suppressed]),
    [['MKV_ERR_STREAM_NOT_FOUND', 8], ['MKV_ERR_SERVER_FULL', 8]],
  );
});

test('after a window, refusals are logged again; a window with nothing counted says nothing more', async () => {
  const { log, lines, events } = collected();
  const refusals = new RefusalLog(log, { limit: 1, windowMs: 50 });
  refusals.refuse('MKV_ERR_BAD_REQUEST', 'first');
  refusals.refuse('MKV_ERR_BAD_REQUEST', 'second');
  const [summary] = (await within(once(events, 'line'))) as [Line];
  assert.equal(summary.suppressed, 1);
  refusals.refuse('MKV_ERR_BAD_REQUEST', 'third');
  assert.deepEqual(lines.map((l) => l.msg).filter((m) => !m.startsWith('…')), ['first', 'third']);
  refusals.flush();
  assert.equal(lines.length, 3, 'no summary for a window within its limit');
});

test('unbounded distinct reasons share one window past the cap', () => {
  const { log, lines } = collected();
  const refusals = new RefusalLog(log, { limit: 1, windowMs: 60_000 });
  for (let i = 0; i < 1000; i++) refusals.refuse(`reason-${i}`, `r${i}`);
  refusals.flush();
  // 32 reasons of their own, then "other": 33 lines in full, and other's summary of the rest.
  assert.ok(lines.length <= 34, `${lines.length} lines`);
  assert.equal(lines.at(-1)?.suppressed, 1000 - 33);
});

test('what the server itself drops (hook calls) is said at warn, with its own noun in the summary', () => {
  const { log, lines } = collected();
  const dropped = new RefusalLog(log, { limit: 1, windowMs: 60_000, level: 'warn', noun: 'hook calls dropped or failed' });
  for (let i = 0; i < 4; i++) dropped.refuse('on_stop_dropped', 'on_stop hook: 256 calls in flight already; one dropped');
  dropped.flush();
  const levels = lines.map((l) => (l as Line & { level: string }).level);
  assert.deepEqual(levels, ['warn', 'warn']);
  assert.match(lines[1]!.msg, /^… and 3 more hook calls dropped or failed \(on_stop_dropped\) in the last \d+ s$/);
});
