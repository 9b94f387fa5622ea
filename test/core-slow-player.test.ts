// Players that stop reading. A stalled player costs bounded memory, never slows the others,
// skips ahead to a keyframe within a couple of seconds of falling behind (--max-lag), and is
// disconnected within --slow-timeout plus a few seconds. A player that pauses until after the
// end of input still gets every byte of it before its connection closes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { collect, ffmpegPath, frameMd5, probe, wholeElementsCopy, type CollectResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertSameFrames, exitWithin, mapLimit, stopQuietly, waitFor, waitForStats, waitForStream } from './helpers/live.js';

const run = promisify(execFile);

/** RSS of a process in bytes, from /proc. */
async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** A GET on a bare socket that reads nothing until resume(); resolves every body byte once the server closes. */
function pausedPlayer(port: number, path: string): { socket: Socket; closed: Promise<Buffer> } {
  const socket = connect(port, '127.0.0.1');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  socket.pause();
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise<Buffer>((resolve) => {
    socket.once('close', () => {
      const all = Buffer.concat(chunks);
      resolve(all.subarray(all.indexOf('\r\n\r\n') + 4));
    });
  });
  return { socket, closed };
}

describe('a player that stalls among 100 that keep up', () => {
  const HEALTHY = 100;
  const MAX_LAG_S = 2;
  const SLOW_TIMEOUT_S = 5;
  let dir: string;
  let master: RunningMaster | undefined;
  let stalled: Socket | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mkvcast-slow-'));
    // About 2 Mbit/s: a stalled reader's kernel buffers (its receive buffer and our capped
    // send buffer) hold under two seconds of it.
    const clip = join(dir, 'steady.mkv');
    await run(ffmpegPath, [
      '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-t', '8',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '2M', '-minrate', '2M', '-maxrate', '2M', '-bufsize', '1M', '-g', '25', clip,
    ]);
    master = await startMaster([
      clip, '--loop', '--edges', '1', '--clients-per-edge', '128',
      '--max-lag', String(MAX_LAG_S), '--slow-timeout', String(SLOW_TIMEOUT_S),
    ]);
    await waitForStream(master, 'steady');
  });

  after(async () => {
    stalled?.destroy();
    await stopQuietly(master);
    await rm(dir, { recursive: true, force: true });
  });

  it('is skipped within --max-lag and kicked within --slow-timeout, plus a few seconds; the others lose nothing', { timeout: 90_000 }, async () => {
    const m = master!;
    const s0 = await waitForStats(m, 'stats with an edge pid', (s) => s.pids.edges[0] !== null);
    const edgePid = s0.pids.edges[0]!;
    const rssBefore = await rss(edgePid);
    const READ_MS = 16_000;
    const healthy = Array.from({ length: HEALTHY }, () => collect(m.url('/live/steady'), { ms: READ_MS }));
    await waitForStats(m, `${HEALTHY} players`, (s) => s.players === HEALTHY, 20_000);

    const player = pausedPlayer(m.port, '/live/steady');
    stalled = player.socket;
    const stalledAt = performance.now();
    const skipped = await waitForStats(m, 'a skip to be counted', (s) => s.skips >= 1, 30_000);
    const skippedAfter = (performance.now() - stalledAt) / 1000;
    const kicked = await waitForStats(m, 'the stalled player to be disconnected', (s) => s.kicked >= 1, 30_000);
    const kickedAfter = (performance.now() - stalledAt) / 1000;
    // Stats reach /stats within about 2 s; the kernel holds under 2 s of the stream.
    assert.ok(skippedAfter < MAX_LAG_S + 5, `skipped ${skippedAfter.toFixed(1)} s after it stalled`);
    assert.ok(kickedAfter < SLOW_TIMEOUT_S + 6, `kicked ${kickedAfter.toFixed(1)} s after it stalled`);
    assert.equal(skipped.kicked, 0, 'skipped before it was kicked');
    // The server closed the stalled connection: once the client reads again, what the kernel
    // still held drains and the connection ends.
    stalled.resume();
    await player.closed;

    const got: CollectResult[] = await Promise.all(healthy);
    const sizes = got.map((g) => g.bytes).sort((a, b) => a - b);
    const median = sizes[HEALTHY >> 1]!;
    for (const g of got) {
      assert.equal(g.status, 200);
      assert.equal(g.end, 'ms', `a healthy player's connection ended early (${g.end})`);
      assert.ok(g.bytes > median * 0.9, `a healthy player got ${g.bytes} bytes; median ${median}`);
    }
    // 16 s of a 2 Mbit/s stream: a player that kept up has most of it.
    assert.ok(median > (READ_MS / 1000) * 0.7 * 250_000, `median ${median} bytes in ${READ_MS} ms`);
    // Each player stopped reading at 16 s, maybe within a piece: probe what it got whole.
    const probes = await mapLimit(got.slice(0, 4), 2, async (g) => probe(await wholeElementsCopy(g.file)));
    for (const p of probes) {
      assert.equal(p.errors, '', 'a healthy player decodes cleanly');
      assert.equal(p.firstVideoKey, true);
    }
    const end = await waitForStats(m, 'the healthy players to leave', (s) => s.players === 0, 20_000);
    assert.equal(end.skips, 1, 'only the stalled player skipped');
    assert.equal(end.kicked, 1, 'only the stalled player was disconnected');
    // The edge held at most the backlog limit plus a Segment for the stalled player.
    const grown = (await rss(edgePid)) - rssBefore;
    assert.ok(grown < 96 * 1024 * 1024, `edge RSS grew by ${Math.round(grown / 1048576)} MB`);
  });
});

describe('a player paused until after the end of input', () => {
  let dir: string;
  let clip: string;
  let master: RunningMaster | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mkvcast-paused-'));
    // Lossless 720p: about 17 MB in 10 s, far more than kernel buffers can hide.
    clip = join(dir, 'big.mkv');
    await run(ffmpegPath, [
      '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-t', '10',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-g', '25', clip,
    ]);
  });

  after(async () => {
    await stopQuietly(master);
    await rm(dir, { recursive: true, force: true });
  });

  it('gets every byte of a 15 MB+ clip, then the connection closes and the master exits 0', { timeout: 90_000 }, async () => {
    const size = (await readFile(clip)).length;
    assert.ok(size > 15 * 1024 * 1024, `clip is ${size} bytes`);
    master = await startMaster([clip, '--edges', '1', '--player-backlog-kb', '1000000', '--max-lag', '600', '--slow-timeout', '600']);
    const m = master;
    await waitForStream(m, 'big');
    const paused = pausedPlayer(m.port, '/live/big');
    const reference = await collect(m.url('/live/big'), { ms: 60_000 });
    assert.equal(reference.end, 'closed');
    // The input has ended and the reading player is gone: the paused one is still served.
    await waitFor('the end of input', () => /stream 'big' ended/.test(m.stderr()), 10_000);
    await waitForStats(m, 'only the paused player left', (s) => s.players === 1, 10_000);
    paused.socket.resume();
    const body = await paused.closed;
    const { code } = await exitWithin(m, 20_000);
    assert.equal(code, 0, m.stderr());
    const referenceBody = await readFile(reference.file);
    assert.equal(body.length, referenceBody.length, 'the paused player got as many bytes as the one that read');
    assert.ok(body.equals(referenceBody), 'and the same bytes');
    const saved = join(dir, 'paused.mkv');
    await writeFile(saved, body);
    assertSameFrames(await frameMd5(saved), await frameMd5(clip), 'the paused player');
  });
});
