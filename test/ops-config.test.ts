// The config file and its reload, with real processes and real signals: SIGHUP adds and removes
// streams while the players of the others keep their connection and every byte; edges grow and
// shrink; an invalid file is refused with its line and changes nothing. And the CLI's polish:
// --version, the messages of a bad --edges and of a bad file at start.
import assert from 'node:assert/strict';
import { createWriteStream, mkdtempSync, writeFileSync, type WriteStream } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { assertMonotonicPts, packetPts, type LiveList } from './helpers/ingest.js';
import { collect, collectWatching, makeClip, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, errorsIgnoringCut, getStats, logMessages, pidAlive, request, runCli, stopQuietly, waitFor, waitForStats, waitForStream } from './helpers/live.js';

/**
 * A player on a raw TCP connection that the test holds: the same socket object from the first
 * byte to the last, so a reconnect cannot hide. Records the body to a file and when data came.
 */
class RawPlayer {
  readonly socket: Socket;
  readonly file: string;
  bytes = 0;
  closed = false;
  /** Longest silence between two chunks, ms, and when the last came. */
  maxGapMs = 0;
  #last = 0;
  #head = Buffer.alloc(0);
  #inBody = false;
  readonly #out: WriteStream;
  status = 0;

  constructor(port: number, path: string) {
    this.file = join(mkdtempSync(join(tmpdir(), 'mkvcast-rawplayer-')), 'body.webm');
    this.#out = createWriteStream(this.file);
    this.socket = connect(port, '127.0.0.1', () => this.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    this.socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.socket.on('error', () => undefined);
    this.socket.once('close', () => (this.closed = true));
  }

  #onData(chunk: Buffer): void {
    const now = performance.now();
    if (this.#last > 0) this.maxGapMs = Math.max(this.maxGapMs, now - this.#last);
    this.#last = now;
    if (!this.#inBody) {
      this.#head = Buffer.concat([this.#head, chunk]);
      const end = this.#head.indexOf('\r\n\r\n');
      if (end < 0) return;
      this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(this.#head.toString('latin1'))?.[1] ?? 0);
      this.#inBody = true;
      chunk = this.#head.subarray(end + 4);
    }
    this.bytes += chunk.length;
    this.#out.write(chunk);
  }

  /** Resolves once the body has more than `n` bytes. */
  has(n: number, timeoutMs = 10_000): Promise<true> {
    return waitFor(`a player with more than ${n} bytes (has ${this.bytes})`, () => this.bytes > n, timeoutMs, 20);
  }

  /** Bytes keep coming for `ms`: more than `min` of them, on the same open connection. */
  async keepsGrowing(ms: number, min: number, what: string): Promise<void> {
    const from = this.bytes;
    await new Promise((r) => setTimeout(r, ms));
    assert.equal(this.closed, false, `${what}: the connection closed`);
    assert.ok(this.bytes - from > min, `${what}: only ${this.bytes - from} bytes in ${ms} ms`);
  }

  async end(): Promise<string> {
    this.socket.destroy();
    await new Promise<void>((resolve) => this.#out.end(resolve));
    return this.file;
  }
}

/** A config file the test rewrites between reloads. */
function configFile(): { path: string; write: (text: string) => void } {
  const path = join(mkdtempSync(join(tmpdir(), 'mkvcast-ops-config-')), 'mkvcast.yaml');
  return { path, write: (text) => writeFileSync(path, text) };
}

async function liveNames(master: RunningMaster): Promise<string[]> {
  const reply = await request(master.url('/live/'));
  return (JSON.parse(reply.body.toString()) as LiveList).streams.map((s) => s.name).sort();
}

/** Sends SIGHUP and waits for the master's answer line (reloaded … or reload refused …). */
async function hup(master: RunningMaster, expect: RegExp): Promise<string> {
  const before = master.stderr().length;
  master.proc.kill('SIGHUP');
  const line = await waitFor('the reload line', () => logMessages(master.stderr().slice(before)).find((l) => /^master: (reloaded|reload refused)/.test(l)), 20_000, 20);
  assert.match(line, expect);
  return line;
}

/** A recording with no hole: it decodes, timestamps never go back, no jump past `maxJumpS`. */
async function assertContinuous(file: string, what: string, maxJumpS = 0.5): Promise<void> {
  const p = await probe(file);
  assert.equal(errorsIgnoringCut(p), '', `${what}: decode errors`);
  const pts = await packetPts(file);
  assertMonotonicPts(pts, { video: 0.05, audio: 0.05 }, what);
  for (const [index, { type, pts: list }] of pts) {
    assert.ok(list.length > 50, `${what}: stream ${index} has ${list.length} packets`);
    const sorted = [...list].sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < sorted.length; i++) gap = Math.max(gap, sorted[i]! - sorted[i - 1]!);
    assert.ok(gap < maxJumpS, `${what}: ${type} stream ${index} jumps ${gap.toFixed(3)} s`);
  }
}

let clip: string;
before(async () => {
  // About 4 MB: a minute of 500 kbit/s VP8 + Opus, looped.
  clip = await makeClip('webm-vp8-opus', { seconds: 60 });
});

describe('reload on SIGHUP', () => {
  it('adds C and removes B; A\'s players keep their connection and every byte', { timeout: 120_000 }, async () => {
    const config = configFile();
    config.write(`edges: 1\nstreams:\n  a: { input: "${clip}", loop: true }\n  b: { input: "${clip}", loop: true }\n`);
    let master: RunningMaster | undefined;
    const players: RawPlayer[] = [];
    try {
      master = await startMaster(['--config', config.path]);
      const m = master;
      await waitForStream(m, 'a');
      await waitForStream(m, 'b');
      const a = [new RawPlayer(m.port, '/live/a'), new RawPlayer(m.port, '/live/a')];
      const b = new RawPlayer(m.port, '/live/b');
      players.push(...a, b);
      await Promise.all([...a, b].map((p) => p.has(100_000)));

      config.write(`edges: 1\nstreams:\n  a: { input: "${clip}", loop: true }\n  c: { input: "${clip}", loop: true }\n`);
      await hup(m, /reloaded \S*mkvcast\.yaml: added c; removed b$/);

      // C plays; B's player gets the end of its stream, and B is gone from /live/.
      const c = collectWatching(m.url('/live/c'), { ms: 3000 });
      await c.firstByte;
      assert.equal((await c.result).status, 200);
      await waitFor('B\'s player to be ended', () => b.closed, 10_000, 20);
      await waitFor('b gone from /live/', async () => (await liveNames(m)).join() === 'a,c', 5000);
      assert.equal((await request(m.url('/live/b'), { method: 'HEAD' })).status, 404);
      await waitForStats(m, 'stats without b', (s) => !s.streams?.some((x) => x.name === 'b') && s.streams?.some((x) => x.name === 'c') === true);

      // A's players never noticed: same open connection, data all along, and it decodes without a hole.
      for (const [i, p] of a.entries()) await p.keepsGrowing(1500, 30_000, `A player ${i + 1} after the reload`);
      for (const [i, p] of a.entries()) {
        assert.ok(p.maxGapMs < 3000, `A player ${i + 1} went ${Math.round(p.maxGapMs)} ms without data`);
        await assertContinuous(await p.end(), `A player ${i + 1}`);
      }
      assertNoStack(m.stderr());
    } finally {
      for (const p of players) await p.end();
      await stopQuietly(master);
    }
  });

  it('a stream given a new input keeps its players: same connection, timestamps going on', { timeout: 120_000 }, async () => {
    const other = await makeClip('webm-vp8-opus', { seconds: 30 });
    const config = configFile();
    config.write(`edges: 1\nstreams:\n  a: { input: "${clip}", loop: true }\n`);
    let master: RunningMaster | undefined;
    let player: RawPlayer | undefined;
    try {
      master = await startMaster(['--config', config.path]);
      const m = master;
      await waitForStream(m, 'a');
      player = new RawPlayer(m.port, '/live/a');
      await player.has(100_000);
      config.write(`edges: 1\nstreams:\n  a: { input: "${other}", loop: true }\n`);
      await hup(m, /reloaded \S*mkvcast\.yaml: new input for a$/);
      await player.keepsGrowing(2000, 40_000, 'the player after the switch');
      // The new input starts where the old one's checkpoint promised: a jump of up to about a second.
      await assertContinuous(await player.end(), 'the player across the switch', 1.5);
      assertNoStack(m.stderr());
    } finally {
      await player?.end();
      await stopQuietly(master);
    }
  });

  it('edges grow from 1 to 2 and shrink back; the retired edge finishes its player, then exits', { timeout: 120_000 }, async () => {
    const config = configFile();
    const write = (edges: number): void => config.write(`edges: ${edges}\nstreams:\n  a: { input: "${clip}", loop: true }\n`);
    write(1);
    let master: RunningMaster | undefined;
    const players: RawPlayer[] = [];
    try {
      master = await startMaster(['--config', config.path]);
      const m = master;
      await waitForStream(m, 'a');
      const first = new RawPlayer(m.port, '/live/a');
      players.push(first);
      await first.has(50_000);
      const [edge1] = (await getStats(m)).pids.edges;

      write(2);
      await hup(m, /reloaded \S*mkvcast\.yaml: changed edges; edges 1 → 2$/);
      const grown = await waitForStats(m, 'a second edge', (s) => s.pids.edges.length === 2 && s.pids.edges[1] !== null);
      const edge2 = grown.pids.edges[1]!;
      assert.equal(grown.pids.edges[0], edge1, 'edge 1 stayed');
      assert.notEqual(edge2, edge1);
      // The new edge serves the next player (the busy one hands it over, or the kernel picks it).
      const second = new RawPlayer(m.port, '/live/a');
      players.push(second);
      await second.has(50_000);
      await waitForStats(m, 'the second player on edge 2', (s) => s.edges?.find((e) => e.pid === edge2)?.players === 1);

      write(1);
      await hup(m, /reloaded \S*mkvcast\.yaml: changed edges; edges 2 → 1$/);
      await waitForStats(m, 'one edge again', (s) => s.pids.edges.length === 1 && s.pids.edges[0] === edge1);
      // Retiring, edge 2 takes no new player but serves the one it has until it leaves.
      await second.keepsGrowing(1500, 30_000, 'the retiring edge\'s player');
      assert.ok(pidAlive(edge2), 'edge 2 stays while its player watches');
      await second.end();
      await waitFor('edge 2 to exit once its player left', () => !pidAlive(edge2), 10_000);
      await first.keepsGrowing(1000, 20_000, 'edge 1\'s player');
      assert.ok(first.maxGapMs < 3000, `edge 1's player went ${Math.round(first.maxGapMs)} ms without data`);
      assert.doesNotMatch(m.stderr(), /died|restarting/);
    } finally {
      for (const p of players) await p.end();
      await stopQuietly(master);
    }
  });

  it('an invalid file is refused with its key and line; the old streams keep playing', { timeout: 60_000 }, async () => {
    const config = configFile();
    config.write(`streams:\n  a: { input: "${clip}", loop: true }\n`);
    let master: RunningMaster | undefined;
    let player: RawPlayer | undefined;
    try {
      master = await startMaster(['--config', config.path, '--edges', '1']);
      const m = master;
      await waitForStream(m, 'a');
      player = new RawPlayer(m.port, '/live/a');
      await player.has(50_000);

      config.write(`streams:\n  a: { input: "${clip}", loop: true }\n  b:\n    input: "${clip}"\n    loop: yes\n`);
      await hup(m, /reload refused: mkvcast\.yaml:5: streams\.b\.loop must be true or false, not "yes"; the running config stays$/);
      config.write(`clientsPerEdge: 8\nmaxlag: 3\nstreams:\n  a: { input: "${clip}", loop: true }\n`);
      await hup(m, /reload refused: mkvcast\.yaml:2: unknown key maxlag \(did you mean maxLag\?\); the running config stays$/);

      await player.keepsGrowing(1000, 20_000, 'A\'s player after the refusals');
      assert.deepEqual(await liveNames(m), ['a']);
      assert.equal((await getStats(m)).capacity, 16, 'clientsPerEdge of the refused file not applied');
      // The file fixed: it applies, at the edge too (its one slot is taken: the next player gets 503).
      config.write(`clientsPerEdge: 1\nstreams:\n  a: { input: "${clip}", loop: true }\n`);
      await hup(m, /reloaded \S*mkvcast\.yaml: changed clientsPerEdge$/);
      await waitForStats(m, 'capacity 1', (s) => s.capacity === 1);
      const refused = await collect(m.url('/live/a'), { ms: 3000 });
      assert.equal(refused.status, 503, 'the edge applied clientsPerEdge: 1');
      assert.equal(player.closed, false, 'the player in the one slot stays');
      // An edge that dies after the reload comes back with the new config, not the one it started with.
      const [edge] = (await getStats(m)).pids.edges;
      process.kill(edge!, 'SIGKILL');
      await waitForStats(m, 'the edge restarted', (s) => s.pids.edges[0] !== null && s.pids.edges[0] !== edge, 15_000);
      await waitFor('the old edge\'s player to be closed', () => player!.closed, 5000, 20);
      const again = new RawPlayer(m.port, '/live/a');
      try {
        await again.has(10_000);
        assert.equal((await collect(m.url('/live/a'), { ms: 3000 })).status, 503, 'the restarted edge has clientsPerEdge: 1');
      } finally {
        await again.end();
      }
    } finally {
      await player?.end();
      await stopQuietly(master);
    }
  });

  it('options that need a restart are said so in the log; the server stays as it is', { timeout: 60_000 }, async () => {
    const config = configFile();
    config.write(`streams:\n  a: { input: "${clip}", loop: true }\n`);
    let master: RunningMaster | undefined;
    try {
      master = await startMaster(['--config', config.path, '--edges', '1']);
      const m = master;
      await waitForStream(m, 'a');
      // The command line (--port 0 --host 127.0.0.1) wins over the file, at a reload too.
      config.write(`host: 127.0.0.2\nport: 1\nstreams:\n  a: { input: "${clip}", loop: true }\n`);
      await hup(m, /reloaded \S*mkvcast\.yaml: nothing changed$/);
      // What the command line leaves to the file, and only a restart can change, is said so.
      config.write(`host: 127.0.0.2\nport: 1\nlogLevel: debug\nstreams:\n  a: { input: "${clip}", loop: true }\n`);
      await hup(m, /reloaded \S*mkvcast\.yaml: logLevel needs a restart \(the running value stays until then\)$/);
      assert.equal((await request(m.url('/live/'))).status, 200);
    } finally {
      await stopQuietly(master);
    }
  });

  it('a per-stream publishKey wins over the global one for that name', { timeout: 60_000 }, async () => {
    const config = configFile();
    config.write('publishKey: global\nstreams:\n  cam: { publishKey: camkey }\n');
    let master: RunningMaster | undefined;
    try {
      master = await startMaster(['--config', config.path, '--edges', '1']);
      const put = async (path: string): Promise<number> =>
        (await request(master!.url(path), { method: 'PUT', headers: { 'Content-Length': '0' } })).status;
      assert.equal(await put('/live/cam?key=global'), 403, 'the global key does not open cam');
      assert.equal(await put('/live/other?key=camkey'), 403, 'cam\'s key opens only cam');
      // The right key gets past the check (an empty body is then refused for what it is: 400).
      assert.equal(await put('/live/cam?key=camkey'), 400);
      assert.equal(await put('/live/other?key=global'), 400);
      // A reload moves cam to a new key.
      config.write('publishKey: global\nstreams:\n  cam: { publishKey: newkey }\n');
      await hup(master, /reloaded \S*mkvcast\.yaml: changed streams\.\*\.publishKey$/);
      assert.equal(await put('/live/cam?key=camkey'), 403);
      assert.equal(await put('/live/cam?key=newkey'), 400);
    } finally {
      await stopQuietly(master);
    }
  });
});

describe('SIGHUP without --config', () => {
  it('is refused in the log and stops nothing', { timeout: 60_000 }, async () => {
    let master: RunningMaster | undefined;
    try {
      master = await startMaster([clip, '--loop', '--name', 'a', '--edges', '1']);
      await waitForStream(master, 'a');
      await hup(master, /reload refused: started without --config: nothing to reload/);
      assert.equal((await request(master.url('/live/'))).status, 200);
    } finally {
      await stopQuietly(master);
    }
  });
});

describe('command line and config file at start', () => {
  it('--version prints the version and exits 0', { timeout: 20_000 }, async () => {
    const { code, stdout } = await runCli(['--version']);
    assert.equal(code, 0);
    assert.match(stdout.trim(), /^\d+\.\d+\.\d+/);
  });

  it('--help shows examples and --no-realtime', { timeout: 20_000 }, async () => {
    const { code, stdout } = await runCli(['--help']);
    assert.equal(code, 0);
    assert.match(stdout, /Examples:/);
    assert.match(stdout, /--config mkvcast\.yaml/);
    assert.match(stdout, /--loop/);
    assert.match(stdout, /tcp:\/\//);
    assert.match(stdout, /--no-realtime/);
  });

  const cases: { why: string; args: () => string[]; file?: string; says: RegExp }[] = [
    { why: '--edges abc', args: () => [clip, '--edges', 'abc'], says: /^mkvcast: --edges must be a whole number ≥ 1, not abc$/ },
    { why: '--max-lag x', args: () => [clip, '--max-lag', 'x'], says: /^mkvcast: --max-lag must be a number ≥ 0, not x$/ },
    { why: 'an unknown key', file: 'port: 8080\nclientsPerEgde: 4\n', args: () => [], says: /^mkvcast: mkvcast\.yaml:2: unknown key clientsPerEgde \(did you mean clientsPerEdge\?\)$/ },
    { why: 'a wrong type', file: 'edges: 2\nloop: "yes"\n', args: () => [], says: /^mkvcast: mkvcast\.yaml:2: loop must be true or false, not "yes"$/ },
    { why: 'a missing input', file: 'streams:\n  x: { input: nowhere.webm }\n', args: () => [], says: /^mkvcast: mkvcast\.yaml:2: streams\.x\.input: cannot read .*nowhere\.webm: no such file$/ },
  ];
  for (const c of cases) {
    it(`${c.why}: exit 2 and one line`, { timeout: 20_000 }, async () => {
      const args = c.args();
      if (c.file !== undefined) {
        const config = configFile();
        config.write(c.file);
        args.push('--config', config.path);
      }
      const { code, stderr } = await runCli(args);
      assert.equal(code, 2, stderr);
      assert.match(stderr.trim(), c.says);
      assert.equal(stderr.trim().split('\n').length, 1, stderr);
    });
  }
});
