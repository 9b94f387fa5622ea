import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VIDEO_SPLIT_MS } from '../src/ingest.js';
import { PACE_STEP_MS, Pacer } from '../src/pacer.js';

/** A pacer whose clock starts now: its first wait sets media time 0 to the current time. */
async function started(): Promise<{ pacer: Pacer; t0: number }> {
  const pacer = new Pacer(true);
  const t0 = performance.now();
  assert.equal(await pacer.wait(0), false, 'the first wait only starts the clock');
  return { pacer, t0 };
}

test('streams whose pieces fall due almost a piece apart are released together, none before it is due', async () => {
  const a = await started();
  const b = await started();
  // A step boundary at least 2 steps away; one stream's piece due early in the step before it, the
  // other's late: nearly a whole piece of a video stream apart (a 20 ms grid released them apart).
  const boundary = Math.ceil((performance.now() + 2 * PACE_STEP_MS) / PACE_STEP_MS) * PACE_STEP_MS;
  const dueA = boundary - VIDEO_SPLIT_MS + 4;
  const dueB = boundary - 3;
  let turn = 0;
  let scheduled = false;
  const release = async (p: { pacer: Pacer; t0: number }, due: number): Promise<{ at: number; turn: number }> => {
    assert.equal(await p.pacer.wait(due - p.t0), true);
    const at = performance.now();
    if (!scheduled) {
      scheduled = true;
      setImmediate(() => turn++);
    }
    return { at, turn };
  };
  const [ra, rb] = await Promise.all([release(a, dueA), release(b, dueB)]);
  assert.ok(ra.at >= dueA && rb.at >= dueB, 'never before its media time is due');
  assert.equal(ra.turn, rb.turn, 'both released in one turn of the event loop (one write to each edge)');
});

test('cancel() ends the wait in progress and every later one at once', async () => {
  const { pacer } = await started();
  const waiting = pacer.wait(60_000);
  pacer.cancel();
  assert.equal(await waiting, true);
  assert.equal(await pacer.wait(120_000), false);
});

test('an unpaced input is never held', async () => {
  const pacer = new Pacer(false);
  assert.equal(await pacer.wait(0), false);
  assert.equal(await pacer.wait(60_000), false);
});
