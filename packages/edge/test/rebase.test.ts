import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Socket } from 'node:net';
import { LatencyHistogram, encodeSize8, encodeUintElement, MKV_ID } from '@mkvcast/shared';
import { firstClusterTimestamp, rebased } from '../src/rebase.js';
import { Player } from '../src/player.js';
import { batchOf } from '../src/batch.js';

/** A Cluster as the source writes its pieces: ID, 8-byte size, an 8-byte Timestamp, then one SimpleBlock. */
function cluster(timestamp: number, payload: number): Buffer {
  const block = Buffer.from([
    0xa3, 0x85, // SimpleBlock, size 5
    0x81, // track 1
    0x00, 0x00, // relative timestamp 0
    0x80, // flags: keyframe
    payload, // one byte of frame data
  ]);
  const body = Buffer.concat([encodeUintElement(MKV_ID.Timestamp, timestamp), block]);
  return Buffer.concat([Buffer.from([0x1f, 0x43, 0xb6, 0x75]), encodeSize8(body.length), body]);
}

test('rebased takes the base off every Cluster Timestamp and leaves the blocks alone', () => {
  const bytes = Buffer.concat([cluster(20_541_000, 1), cluster(20_541_040, 2)]);
  const copy = rebased(bytes, 20_541_000);
  assert.equal(firstClusterTimestamp(copy), 0);
  assert.equal(firstClusterTimestamp(copy.subarray(bytes.length / 2)), 40);
  assert.equal(copy[copy.length / 2 - 1], 1, 'the first block kept its frame byte');
  assert.equal(copy[copy.length - 1], 2);
  assert.equal(firstClusterTimestamp(bytes), 20_541_000, 'the shared bytes are not touched');
});

test('rebased copies bytes that are not Clusters unchanged', () => {
  const junk = Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x80]);
  assert.deepEqual(rebased(junk, 5), junk);
  assert.equal(firstClusterTimestamp(junk), null);
});

class FakeSocket {
  writableLength = 0;
  written: Uint8Array[] = [];
  write(bytes: Uint8Array): boolean {
    this.written.push(bytes);
    return true;
  }
  cork(): void {}
  uncork(): void {}
  destroy(): void {}
}

const policy = { backlogBytes: 1 << 20, maxLagMs: 10_000, slowTimeoutMs: 20_000 };
const counters = () => ({ skips: 0, kicked: 0, bytesOut: 0, latency: new LatencyHistogram() });

test('a rebasing player (a browser) gets a stream that starts at 0; others get the shared bytes', () => {
  const first = { seq: 0, ts: 0, keyframe: true, bytes: cluster(600_000, 1) };
  const next = { seq: 1, ts: 40, keyframe: false, bytes: cluster(600_040, 2) };
  const browser = new FakeSocket();
  const player = new Player(browser as unknown as Socket, policy, counters(), undefined, true);
  player.start(Buffer.from('head'), new Uint8Array([9]), [first]);
  player.deliver(batchOf([next]), Date.now());
  assert.equal(firstClusterTimestamp(browser.written[2]!), 0);
  assert.equal(firstClusterTimestamp(browser.written[3]!), 40);

  const other = new FakeSocket();
  const plain = new Player(other as unknown as Socket, policy, counters());
  plain.start(Buffer.from('head'), new Uint8Array([9]), [first]);
  plain.deliver(batchOf([next]), Date.now());
  assert.equal(other.written[2], first.bytes, 'the very same Buffer, no copy');
  assert.equal(other.written[3], next.bytes);
});

test('a rebasing player that waits for a keyframe takes its base from the first Cluster it is sent', () => {
  const socket = new FakeSocket();
  const player = new Player(socket as unknown as Socket, policy, counters(), undefined, true);
  player.start(Buffer.from('head'), new Uint8Array([9]), []);
  player.deliver(batchOf([{ seq: 3, ts: 0, keyframe: false, bytes: cluster(1000, 1) }]), Date.now());
  player.deliver(batchOf([{ seq: 4, ts: 0, keyframe: true, bytes: cluster(1040, 2) }, { seq: 5, ts: 0, keyframe: false, bytes: cluster(1080, 3) }]), Date.now());
  const sent = socket.written.at(-1)!;
  assert.equal(socket.written.length, 3, 'head, header, then the batch from its keyframe');
  assert.equal(firstClusterTimestamp(sent), 0);
  assert.equal(firstClusterTimestamp(Buffer.from(sent).subarray(sent.length / 2)), 40);
});
