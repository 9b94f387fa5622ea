// A player that stops reading: it must cost a bounded amount of memory, never slow the
// others, skip ahead to a keyframe while it lags, and be disconnected past --slow-timeout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { collect, ffmpegPath, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { stopQuietly, waitForStats, waitForStream } from './helpers/live.js';

const run = promisify(execFile);

/** RSS of a process in bytes, from /proc. */
async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

describe('a player that stops reading', () => {
  let dir: string;
  let master: RunningMaster | undefined;
  let stalled: Socket | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mkvcast-slow-'));
    // A heavy stream (lossless H.264, tens of Mbit/s) fills the kernel's socket buffers in seconds.
    const clip = join(dir, 'heavy.mkv');
    await run(ffmpegPath, [
      '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '6',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-g', '25', clip,
    ]);
    master = await startMaster([clip, '--loop', '--edges', '1', '--player-backlog-kb', '256', '--slow-timeout', '3']);
    await waitForStream(master, 'heavy');
  });

  after(async () => {
    stalled?.destroy();
    await stopQuietly(master);
    await rm(dir, { recursive: true, force: true });
  });

  it('skips, is disconnected, costs bounded memory, and never slows a reading player', { timeout: 60_000 }, async () => {
    const m = master!;
    const s0 = await waitForStats(m, 'stats with an edge pid', (s) => s.pids.edges[0] !== null);
    const edgePid = s0.pids.edges[0]!;
    const rssBefore = await rss(edgePid);

    stalled = connect(m.port, '127.0.0.1');
    stalled.write('GET /live/heavy HTTP/1.1\r\nHost: x\r\n\r\n');
    stalled.pause(); // reads nothing from here on
    const stalledClosed = new Promise<void>((resolve) => stalled!.once('close', () => resolve()));
    stalled.on('error', () => undefined);

    const reader = collect(m.url('/live/heavy'), { ms: 8000 });
    const skipped = await waitForStats(m, 'a skip to be counted', (s) => s.skips >= 1, 20_000);
    const kicked = await waitForStats(m, 'the stalled player to be disconnected', (s) => s.kicked >= 1, 20_000);
    // The server closed the stalled connection: once the client reads again, what the kernel
    // still held drains and the connection ends.
    stalled.resume();
    await Promise.race([stalledClosed, sleep(15_000).then(() => assert.fail('stalled connection still open'))]);
    assert.ok(skipped.skips >= 1 && kicked.kicked >= 1);

    const got = await reader;
    assert.equal(got.status, 200);
    const p = await probe(got.file);
    assert.equal(p.errors, '', 'the reading player decodes cleanly');
    assert.equal(p.firstVideoKey, true);
    // 8 s of a 25 fps stream, read in real time while the other player stalled: no stall here.
    assert.ok(p.videoPackets >= 25 * 6, `${p.videoPackets} frames in 8 s`);
    // The edge held at most the backlog limit plus a Segment for the stalled player.
    const grown = (await rss(edgePid)) - rssBefore;
    assert.ok(grown < 64 * 1024 * 1024, `edge RSS grew by ${Math.round(grown / 1048576)} MB`);
  });
});
