// An edge's stream writes what it was given since its last flush (the edge flushes once a write of
// the source, which gathers its inputs' Segments within --max-delay, is read whole) to each player
// as one write. Its DASH store is built at the first DASH request, from the ring, and gives what a
// store fed from the start gives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Batch } from '../src/batch.js';
import { DashStore } from '../src/dashStore.js';
import { CLOCK_EVERY, DASH_IDLE_MS, LiveStream } from '../src/liveStream.js';
import type { LiveEntry, Player } from '../src/player.js';
import { AUDIO, VIDEO, av, cluster, clustersOf, header, simpleBlock } from './clusters.js';

/** The part of a Player a LiveStream uses: what it was given, write by write. */
class FakePlayer {
  writes: Buffer[] = [];
  /** The clock each write was given. */
  nows: number[] = [];
  start(): number {
    return 0;
  }
  deliver(batch: Batch, now: number): number {
    this.writes.push(Buffer.from(batch.bytes));
    this.nows.push(now);
    return batch.bytes.length;
  }
}

const entry = (seq: number, keyframe: boolean): LiveEntry => ({
  seq,
  ts: seq * 40,
  keyframe,
  bytes: cluster(seq * 40, simpleBlock(1, 0, keyframe, `frame ${seq}`)),
});

test('the Segments pushed between two flushes go to each player as one write, at the flush', () => {
  const stream = new LiveStream(header([VIDEO]), { maxAgeMs: 60_000, maxBytes: 1 << 20 });
  const players = [new FakePlayer(), new FakePlayer()];
  for (const p of players) stream.join(p as unknown as Player, 'next', 0);
  const read = [entry(0, true), entry(1, false), entry(2, false)];
  for (const e of read) stream.push(e);
  for (const p of players) assert.equal(p.writes.length, 0, 'nothing is written before the flush');
  stream.flush();
  const all = Buffer.concat(read.map((e) => e.bytes));
  for (const p of players) assert.deepEqual(p.writes, [all], 'one write of the three Segments, in order');
  stream.push(entry(3, false));
  stream.flush();
  for (const p of players) assert.deepEqual(p.writes.at(-1), entry(3, false).bytes, 'the next flush writes only what came since');
  stream.flush();
  for (const p of players) assert.equal(p.writes.length, 2, 'a flush with nothing pending writes nothing');
});

test('a flush reads the clock again every CLOCK_EVERY players: the later players of a big edge get the later time', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const stream = new LiveStream(header([VIDEO]), { maxAgeMs: 60_000, maxBytes: 1 << 20 });
  const players = Array.from({ length: 3 * CLOCK_EVERY + 1 }, () => new FakePlayer());
  for (const p of players) stream.join(p as unknown as Player, 'next', 0);
  // Each write takes a millisecond, as far as the clock goes.
  for (const p of players) {
    const deliver = p.deliver.bind(p);
    p.deliver = (batch: Batch, now: number): number => {
      t.mock.timers.tick(1);
      return deliver(batch, now);
    };
  }
  stream.push(entry(0, true));
  stream.flush();
  const nows = players.map((p) => p.nows[0]! - 1_000_000);
  const readings = [0, CLOCK_EVERY, 2 * CLOCK_EVERY, 3 * CLOCK_EVERY];
  assert.deepEqual(nows, players.map((_, i) => readings[Math.floor(i / CLOCK_EVERY)]));
});

const LIMITS = { maxAgeMs: 60_000, maxBytes: 1 << 20 };

/** 8 s of video and audio as the source sends it: one Segment per 40 ms of media (a --max-delay window's worth), `from` ms on. */
function segments(fromSeq: number, ms: number): LiveEntry[] {
  const clusters = clustersOf(av(ms, 1000, fromSeq * 40), 3);
  return clusters.map((bytes, i) => ({ seq: fromSeq + i, ts: (fromSeq + i) * 40, keyframe: false, bytes }));
}

const listed = (store: DashStore): [number, number, string][] => store.segments().map((s) => [s.t, s.d, s.bytes.toString('hex')]);

test('DASH built at the first request from the ring lists the segments, bytes and start time of a store fed from the start', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const stream = new LiveStream(header([VIDEO, AUDIO]), LIMITS);
  const eager = new DashStore(header([VIDEO, AUDIO]), LIMITS);
  const all = segments(0, 8000);
  all.forEach((e, i) => {
    // In real time: each Segment arrives as its media time comes, in a read of its own,
    // but for the last 1.2 s (with the keyframe at 7 s), still pending when DASH is asked for.
    t.mock.timers.tick(40);
    stream.push(e);
    if (i < all.length - 30) stream.flush();
    eager.push(e.bytes, Date.now());
  });
  const lazy = stream.dash();
  assert.deepEqual(listed(lazy), listed(eager));
  assert.ok(lazy.segments().length >= 6, `GOPs 1 s long over 8 s: ${lazy.segments().length}`);
  assert.ok(Math.abs(lazy.anchor! - eager.anchor!) <= 1000, `availabilityStartTime ${lazy.anchor} against ${eager.anchor}`);
  // From then on it follows the stream as the eager one does.
  for (const e of segments(200, 3000)) {
    t.mock.timers.tick(40);
    stream.push(e);
    stream.flush();
    eager.push(e.bytes, Date.now());
  }
  assert.equal(stream.dash(), lazy);
  assert.deepEqual(listed(lazy), listed(eager));
});

test('a DASH store nobody asked for in DASH_IDLE_MS is let go, and built again from the ring at the next request', (t) => {
  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  const stream = new LiveStream(header([VIDEO, AUDIO]), { maxAgeMs: 5000, maxBytes: 1 << 20 });
  const eager = new DashStore(header([VIDEO, AUDIO]), { maxAgeMs: 5000, maxBytes: 1 << 20 });
  const first = stream.dash();
  let seq = 0;
  for (let i = 0; i < Math.ceil((DASH_IDLE_MS + 10_000) / 4000); i++) {
    for (const e of segments(seq, 4000)) {
      t.mock.timers.tick(40);
      stream.push(e);
      stream.flush();
      eager.push(e.bytes, Date.now());
    }
    seq += 100;
  }
  const again = stream.dash();
  assert.notEqual(again, first, 'a new store');
  assert.equal(first.segments().at(-1)!.t < again.segments().at(-1)!.t, true, 'the old one stopped following the stream');
  assert.deepEqual(listed(again), listed(eager).slice(-listed(again).length));
  assert.ok(listed(again).length >= 3);
});
