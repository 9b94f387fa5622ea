// An edge's stream writes what one read from the source brought (the source gathers its inputs'
// Segments within --max-delay into one write) to each player as one write, once the read is handled.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Batch } from '../src/batch.js';
import { LiveStream } from '../src/liveStream.js';
import type { LiveEntry, Player } from '../src/player.js';
import { VIDEO, cluster, header, simpleBlock } from './clusters.js';

/** The part of a Player a LiveStream uses: what it was given, write by write. */
class FakePlayer {
  writes: Buffer[] = [];
  start(): number {
    return 0;
  }
  deliver(batch: Batch): number {
    this.writes.push(Buffer.from(batch.bytes));
    return batch.bytes.length;
  }
}

const entry = (seq: number, keyframe: boolean): LiveEntry => ({
  seq,
  ts: seq * 40,
  keyframe,
  bytes: cluster(seq * 40, simpleBlock(1, 0, keyframe, `frame ${seq}`)),
});

test("the Segments of one read from the source go to each player as one write, after the read", async () => {
  const stream = new LiveStream(header([VIDEO]), { maxAgeMs: 60_000, maxBytes: 1 << 20 });
  const players = [new FakePlayer(), new FakePlayer()];
  for (const p of players) stream.join(p as unknown as Player, 'next', 0);
  const read = [entry(0, true), entry(1, false), entry(2, false)];
  for (const e of read) stream.push(e);
  for (const p of players) assert.equal(p.writes.length, 0, 'nothing is written while the read is being handled');
  await Promise.resolve();
  const all = Buffer.concat(read.map((e) => e.bytes));
  for (const p of players) assert.deepEqual(p.writes, [all], 'one write of the three Segments, in order');
  stream.push(entry(3, false));
  await Promise.resolve();
  for (const p of players) assert.deepEqual(p.writes.at(-1), entry(3, false).bytes, 'the next read goes out on its own');
});
