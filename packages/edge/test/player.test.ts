import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Socket } from 'node:net';
import { LatencyHistogram, type RingEntry } from '@mkvcast/shared';
import { Player, type PlayerCounters } from '../src/player.js';
import { batchOf } from '../src/batch.js';

/** The part of a socket a Player uses, with a backlog the test controls. */
class FakeSocket {
  writableLength = 0;
  written: Uint8Array[] = [];
  destroyed = false;
  corked = 0;
  write(bytes: Uint8Array): boolean {
    this.written.push(bytes);
    return true;
  }
  cork(): void {
    this.corked++;
  }
  uncork(): void {}
  destroy(): void {
    this.destroyed = true;
  }
}

const seg = (seq: number, keyframe: boolean): RingEntry => ({ seq, ts: seq * 100, keyframe, bytes: new Uint8Array([seq]) });

function setup() {
  const socket = new FakeSocket();
  const counters: PlayerCounters = { skips: 0, kicked: 0, bytesOut: 0, latency: new LatencyHistogram() };
  const player = new Player(socket as unknown as Socket, { backlogBytes: 1000, maxLagMs: 2000, slowTimeoutMs: 5000 }, counters);
  return { socket, counters, player };
}

test('start writes response head, stream header and the join Segments in one batch', () => {
  const { socket, player, counters } = setup();
  player.start(Buffer.from('HTTP'), new Uint8Array([0xaa]), [seg(3, true), seg(4, false)]);
  assert.equal(socket.corked, 1);
  assert.deepEqual(socket.written.map((b) => b[0]), [0x48, 0xaa, 3, 4]);
  assert.equal(counters.bytesOut, 3);
});

test('a player with nothing to start on waits for the first keyframe', () => {
  const { socket, player } = setup();
  player.start(Buffer.from('H'), new Uint8Array([0xaa]), []);
  player.deliver(batchOf([seg(0, false)]), 0);
  player.deliver(batchOf([seg(1, true)]), 0);
  player.deliver(batchOf([seg(2, false)]), 0);
  assert.deepEqual(socket.written.slice(2).map((b) => b[0]), [1, 2]);
});

test('a backlogged player skips to the next keyframe once it drains, counted once', () => {
  const { socket, player, counters } = setup();
  player.deliver(batchOf([seg(0, true)]), 0);
  socket.writableLength = 5000; // the peer stopped reading
  player.deliver(batchOf([seg(1, false)]), 100);
  player.deliver(batchOf([seg(2, true)]), 200);
  socket.writableLength = 0; // it caught up
  player.deliver(batchOf([seg(3, false)]), 300); // mid-GOP: still skipped
  player.deliver(batchOf([seg(4, true)]), 400);
  player.deliver(batchOf([seg(5, false)]), 500);
  assert.deepEqual(socket.written.map((b) => b[0]), [0, 4, 5]);
  assert.equal(counters.skips, 1);
  assert.equal(counters.kicked, 0);
  assert.equal(socket.destroyed, false);
});

test('a player that lags past slowTimeoutMs is disconnected and counted', () => {
  const { socket, player, counters } = setup();
  socket.writableLength = 5000;
  player.deliver(batchOf([seg(0, true)]), 1000);
  player.deliver(batchOf([seg(1, true)]), 4000);
  assert.equal(socket.destroyed, false);
  player.deliver(batchOf([seg(2, true)]), 6001);
  assert.equal(socket.destroyed, true);
  assert.equal(counters.kicked, 1);
});

test('a player behind for maxLagMs skips though its backlog is small (regression: lag hid in the kernel)', () => {
  const { socket, player, counters } = setup();
  player.deliver(batchOf([seg(0, true)]), 0);
  socket.writableLength = 10; // under backlogBytes, but not taken by the kernel
  player.deliver(batchOf([seg(1, false)]), 1000); // behind since 1000
  player.deliver(batchOf([seg(2, false)]), 2500);
  assert.equal(counters.skips, 0);
  player.deliver(batchOf([seg(3, true)]), 3001); // 2001 ms behind
  assert.equal(counters.skips, 1);
  assert.deepEqual(socket.written.map((b) => b[0]), [0, 1, 2]);
  socket.writableLength = 0; // caught up: the clock restarts
  player.deliver(batchOf([seg(4, true)]), 9000);
  assert.deepEqual(socket.written.map((b) => b[0]), [0, 1, 2, 4]);
  assert.equal(counters.kicked, 0);
});

test('resync makes a player wait for a keyframe', () => {
  const { socket, player } = setup();
  player.deliver(batchOf([seg(0, true)]), 0);
  player.resync();
  player.deliver(batchOf([seg(1, false)]), 0);
  player.deliver(batchOf([seg(2, true)]), 0);
  assert.deepEqual(socket.written.map((b) => b[0]), [0, 2]);
});

test('each live Segment written records its latency since the source had it; skipped ones do not', () => {
  const { socket, player, counters } = setup();
  const sentAt = 1_000_000;
  player.deliver(batchOf([{ ...seg(0, true), sentAt }]), sentAt + 40);
  socket.writableLength = 5000;
  player.deliver(batchOf([{ ...seg(1, true), sentAt }]), sentAt + 40);
  const summary = counters.latency.summary();
  assert.equal(summary.samples, 1);
  assert.equal(summary.p50, 40);
});

test('a batch is written whole; a player waiting for a keyframe gets it from its first keyframe on', () => {
  const { socket, player } = setup();
  player.deliver(batchOf([seg(0, true), seg(1, false)]), 0);
  player.resync();
  player.deliver(batchOf([seg(2, false), seg(3, true), seg(4, false)]), 0);
  player.deliver(batchOf([seg(5, false), seg(6, false)]), 0);
  assert.deepEqual(socket.written.map((b) => [...b]), [[0, 1], [3, 4], [5, 6]]);
});

test('a batch without a keyframe is not written to a player waiting for one', () => {
  const { socket, player } = setup();
  player.resync();
  player.deliver(batchOf([seg(1, false), seg(2, false)]), 0);
  assert.equal(socket.written.length, 0);
});

test('a player kicked for lagging reports "kicked as slow", once, with its body bytes and who it was', () => {
  const socket = new FakeSocket();
  const counters: PlayerCounters = { skips: 0, kicked: 0, bytesOut: 0, latency: new LatencyHistogram() };
  const client = { ip: '192.0.2.7', stream: 'cam', path: '/live/cam', userAgent: 'mpv 0.37' };
  const player = new Player(socket as unknown as Socket, { backlogBytes: 1000, maxLagMs: 2000, slowTimeoutMs: 5000 }, counters, client);
  player.start(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), new Uint8Array([0xaa, 0xbb]), [seg(3, true)]);
  socket.writableLength = 5000;
  player.deliver(batchOf([seg(4, true)]), 1000); // skipped: backlog
  player.deliver(batchOf([seg(5, true)]), 6001); // kicked
  assert.equal(socket.destroyed, true);
  // Body bytes the kernel took: the stream header (2) and Segment 3 (1), not the response head, less 1 left unsent.
  socket.writableLength = 1;
  const record = player.report();
  assert.ok(record);
  assert.equal(record.reason, 'kicked as slow');
  assert.deepEqual({ ...record, durationMs: 0 }, { ...client, bytes: 2, durationMs: 0, reason: 'kicked as slow' });
  assert.equal(player.report(), null, 'one access record per session');
});

test('a player nobody ended left by itself: "client closed"; the first cause of an end is the one reported', () => {
  const { player } = setup();
  player.start(Buffer.from('H'), new Uint8Array([1]), []);
  assert.equal(player.report()?.reason, 'client closed');
  const second = setup();
  second.player.end('server shutdown');
  second.player.end('kicked as slow');
  assert.equal(second.socket.destroyed, true);
  assert.equal(second.player.report()?.reason, 'server shutdown');
});
