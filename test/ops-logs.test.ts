// Logs of a real master: JSON lines from every process, one access line per player session and
// a start and an end line per publish session, refusals that cannot flood the log, and a
// startup line whose URL can be opened.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { makeClip } from './helpers/media.js';
import { MASTER_BIN, startMaster, type RunningMaster } from './helpers/server.js';
import { chunkedUpload, waitForPublished } from './helpers/ingest.js';
import { onPath } from './helpers/ingest.js';
import { assertNoStack, exitWithin, mapLimit, pidAlive, request, stopQuietly, waitFor } from './helpers/live.js';

/** util-linux's script(1) runs a command on a pseudo-terminal: stderr is a TTY there. */
const SCRIPT = onPath('script');

interface LogLine {
  time: string;
  level: string;
  process: string;
  msg: string;
  [field: string]: unknown;
}

/** Every stderr line as JSON; fails naming the first line that is not a log line. */
function parseLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        assert.fail(`not a JSON line: ${JSON.stringify(line)}\nstderr:\n${stderr}`);
      }
      for (const key of ['time', 'level', 'process', 'msg'] as const) {
        assert.equal(typeof parsed[key], 'string', `"${key}" in ${line}`);
      }
      assert.ok(!Number.isNaN(Date.parse(parsed.time)), `time of ${line}`);
      assert.ok(['debug', 'info', 'warn', 'error'].includes(parsed.level), `level of ${line}`);
      assert.match(parsed.process, /^(master|source|edge-\d+)$/, `process of ${line}`);
      return parsed;
    });
}

interface Played {
  status: number;
  /** Body bytes received. */
  bytes: number;
  /** 'eof': the server ended the response; 'stopped': the client closed it. */
  end: 'eof' | 'stopped';
}

/**
 * A player: GET with its own User-Agent, reading to the end, or leaving after `stopAfter`
 * body bytes. It leaves with a reset, which the edge sees at once; a player that only
 * half-closes is seen at the next write to it (the edge keeps half-open connections).
 */
function play(url: string, userAgent: string, stopAfter = Infinity, timeoutMs = 30_000): Promise<Played> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { 'User-Agent': userAgent } });
    const timer = setTimeout(() => req.destroy(new Error(`${userAgent}: not done within ${timeoutMs} ms`)), timeoutMs);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('response', (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes < stopAfter) return;
        clearTimeout(timer);
        res.socket.resetAndDestroy();
        resolve({ status: res.statusCode ?? 0, bytes, end: 'stopped' });
      });
      res.once('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, bytes, end: 'eof' });
      });
    });
  });
}

describe('logs', () => {
  let clip: Buffer;
  before(async () => {
    clip = await readFile(await makeClip('webm-vp8-opus', { seconds: 4 }));
  });

  describe('a run with players, a publisher and a flood of 404s (--log-format json)', () => {
    let master: RunningMaster | undefined;
    let lines: LogLine[] = [];
    let whole: Played;
    let stopped: Played;
    let published: { status: number };

    before(async () => {
      master = await startMaster(['--edges', '2', '--grace', '0', '--log-format', 'json']);
      const m = master;
      // The publisher sends the clip over 3 s, and ends its upload only once the player that
      // leaves early has left (and been logged): the stream is still live when it leaves.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const upload = chunkedUpload(m.url('/live/pub'), clip, { seconds: 3, method: 'PUT', headers: { 'User-Agent': 'ops-publisher/1' }, holdEnd: held });
      await waitForPublished(m, 'pub', upload);
      const wholePlay = play(m.url('/live/pub'), 'ops-whole/1');
      stopped = await play(m.url('/live/pub'), 'ops-early/1', 10_000);
      await waitFor('the access line of the player that left early', () => m.stderr().includes('ops-early/1'), 10_000);
      release();
      [whole, published] = await Promise.all([wholePlay, upload]);
      // The last access lines come once the stream has ended on every edge (grace 0).
      await waitFor('the access line of the player that stayed', () => m.stderr().includes('ops-whole/1'), 10_000);
      const { code } = await exitWithin({ ...m, exited: m.stop() }, 15_000);
      assert.equal(code, 0, m.stderr());
      lines = parseLines(m.stderr());
    });

    after(() => stopQuietly(master));

    it('every stderr line is a JSON log line, from every process, with no status line drawn', () => {
      assertNoStack(master!.stderr());
      assert.doesNotMatch(master!.stderr(), /\r|\x1b\[/, 'no terminal control off a terminal');
      const processes = new Set(lines.map((l) => l.process));
      for (const p of ['master', 'source', 'edge-1', 'edge-2']) assert.ok(processes.has(p), `a line from ${p}: ${[...processes]}`);
    });

    it('a player that took the whole stream: one access line, its bytes exactly what it received, "stream ended"', () => {
      assert.equal(whole.status, 200);
      assert.equal(whole.end, 'eof');
      const access = lines.filter((l) => l.userAgent === 'ops-whole/1');
      assert.equal(access.length, 1, JSON.stringify(access));
      const line = access[0]!;
      assert.equal(line.reason, 'stream ended');
      assert.equal(line.ip, '127.0.0.1');
      assert.equal(line.stream, 'pub');
      assert.equal(line.bytes, whole.bytes);
      assert.ok(typeof line.durationMs === 'number' && line.durationMs > 0, `duration: ${line.durationMs}`);
      assert.match(line.msg, /player 127\.0\.0\.1 left 'pub' .*: stream ended/);
    });

    it('a player that left early: one access line, "client closed", bytes from what it received to one write more', () => {
      assert.equal(stopped.end, 'stopped');
      const access = lines.filter((l) => l.userAgent === 'ops-early/1');
      assert.equal(access.length, 1, JSON.stringify(access));
      const line = access[0]!;
      assert.equal(line.reason, 'client closed');
      assert.equal(line.stream, 'pub');
      const bytes = line.bytes as number;
      // The kernel may have taken a write the player closed before reading: at most one
      // batch of the stream (~50 ms of a 500 kbit/s clip; its first write holds the newest GOP).
      assert.ok(bytes >= stopped.bytes && bytes <= stopped.bytes + 256 * 1024, `logged ${bytes}, received ${stopped.bytes}`);
    });

    it('the publish session: a start line and an end line with its bytes, duration and reason', () => {
      assert.equal(published.status, 200);
      const mine = lines.filter((l) => l.userAgent === 'ops-publisher/1' && l.process === 'source');
      assert.equal(mine.length, 2, JSON.stringify(mine));
      const [start, end] = mine as [LogLine, LogLine];
      assert.match(start.msg, /publisher .* connected/);
      assert.equal(start.stream, 'pub');
      assert.equal(end.stream, 'pub');
      assert.equal(end.reason, 'publisher finished');
      assert.equal(end.ip, '127.0.0.1');
      // Every byte of the connection: the body (chunked framing adds a few bytes per chunk) and the head.
      const bytes = end.bytes as number;
      assert.ok(bytes > clip.length && bytes < clip.length + 16 * 1024, `logged ${bytes}, body ${clip.length}`);
      assert.ok((end.durationMs as number) >= 2000, `duration ${end.durationMs} ms of a 3 s upload`);
    });
  });

  it('a server that stops says how every open session ended: "server shutdown", for its player and its publisher', { timeout: 60_000 }, async () => {
    let master: RunningMaster | undefined;
    try {
      master = await startMaster(['--edges', '1', '--log-format', 'json']);
      const m = master;
      // The upload stays open: the stream is live when the server stops.
      const upload = chunkedUpload(m.url('/live/open'), clip, { seconds: 2, method: 'PUT', headers: { 'User-Agent': 'ops-open-publisher/1' }, holdEnd: new Promise(() => {}) });
      await waitForPublished(m, 'open', upload);
      let received = 0;
      const playing = new Promise<void>((resolve, reject) => {
        http.get(m.url('/live/open'), { agent: false, headers: { 'User-Agent': 'ops-open-player/1' } }, (res) => {
          res.on('data', (c: Buffer) => {
            received += c.length;
            resolve();
          });
          res.on('error', () => undefined);
        }).once('error', reject);
      });
      await playing;
      const { code } = await exitWithin({ ...m, exited: m.stop() }, 15_000);
      assert.equal(code, 0, m.stderr());
      const lines = parseLines(m.stderr());
      const player = lines.filter((l) => l.userAgent === 'ops-open-player/1');
      assert.equal(player.length, 1, JSON.stringify(player));
      assert.equal(player[0]!.reason, 'server shutdown');
      assert.ok((player[0]!.bytes as number) >= received, `logged ${player[0]!.bytes}, received ${received}`);
      const publisher = lines.filter((l) => l.userAgent === 'ops-open-publisher/1' && l.reason !== undefined);
      assert.equal(publisher.length, 1, JSON.stringify(publisher));
      assert.equal(publisher[0]!.reason, 'server shutdown');
      assert.ok((publisher[0]!.bytes as number) > 0);
    } finally {
      await stopQuietly(master);
    }
  });

  it('the startup line of a server on every address names a URL that opens, not 0.0.0.0; 500 404s log a few lines and a count', { timeout: 60_000 }, async () => {
    const REFUSED = 500;
    const proc = spawn(process.execPath, [MASTER_BIN, '--edges', '2', '--port', '0', '--host', '0.0.0.0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    try {
      const line = await waitFor('the listening line', () => parseLines(stderr).find((l) => l.msg.startsWith('listening on ')), 20_000, 50);
      const url = line.url as string;
      assert.match(line.msg, /^listening on http:\/\/localhost:\d+\//);
      assert.doesNotMatch(line.msg, /0\.0\.0\.0/);
      // Only the loopback URL is fetched: the machine's other addresses are listed, never visited here.
      assert.match(url, /^http:\/\/localhost:\d+\/$/);
      const reply = await request(url, { headers: { Accept: 'text/html' } });
      assert.equal(reply.status, 200, stderr);

      // A misbehaving client: 500 requests for a stream that does not exist, 20 at a time.
      const statuses = await mapLimit(Array.from({ length: REFUSED }), 20, async () => (await request(`${url}live/nope`)).status);
      assert.deepEqual(new Set(statuses), new Set([404]));
      // The edges say what they counted as they stop, at the latest.
      proc.kill('SIGTERM');
      await exited;
      const refusals = parseLines(stderr).filter((l) => l.reason === 'MKV_ERR_STREAM_NOT_FOUND');
      assert.ok(refusals.length <= 20, `${refusals.length} lines:\n${refusals.map((l) => l.msg).join('\n')}`);
      const summaries = refusals.filter((l) => typeof l.suppressed === 'number');
      assert.ok(summaries.length >= 1, 'a summary line');
      for (const s of summaries) assert.match(s.msg, /^… and \d+ more refusals \(MKV_ERR_STREAM_NOT_FOUND\) in the last \d+ s$/);
      const said = refusals.filter((l) => l.suppressed === undefined);
      for (const l of said) assert.match(l.msg, /^refused GET \/live\/nope from 127\.0\.0\.1: 404 /);
      const counted = summaries.reduce((n, s) => n + (s.suppressed as number), 0);
      assert.equal(said.length + counted, REFUSED, 'every refusal is either logged or counted');
    } finally {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    }
  });

  it('on a terminal: a status line redrawn in place, cleared before each log line', { timeout: 60_000 }, async (t) => {
    if (!SCRIPT) {
      t.skip('script(1) (util-linux) is not on PATH: no pseudo-terminal to run the master on');
      return;
    }
    const command = [process.execPath, MASTER_BIN, '--edges', '1', '--port', '0', '--host', '127.0.0.1', '--log-format', 'json'].join(' ');
    const proc = spawn(SCRIPT, ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    let masterPid = 0;
    try {
      const listening = await waitFor('the listening line', () => /"pid":(\d+),[^\n]*"msg":"listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out) ?? undefined, 20_000, 50);
      masterPid = Number(listening[1]);
      const status = /\d+ streams? · \d+\/16 players · \d+\.\d Mbit\/s out · \d+ skips · \d+ kicks · up \d+:\d\d:\d\d/;
      await waitFor('the status line', () => status.test(out), 10_000, 50);
      // A log line after the status line: written over it (cleared first), and the status drawn again after.
      const port = listening[2]!;
      assert.equal((await request(`http://127.0.0.1:${port}/live/nope`)).status, 404);
      await waitFor('the refusal line', () => out.includes('refused GET /live/nope'), 10_000, 50);
      const at = out.indexOf('{"level":"info"', out.search(status));
      assert.ok(at > 0, out);
      assert.equal(out.slice(at - 4, at), '\r\x1b[K', `a log line starts by clearing the status line: ${JSON.stringify(out.slice(at - 120, at + 20))}`);
      await waitFor('the status line drawn again after the refusal line', () => status.test(out.slice(out.indexOf('refused GET /live/nope'))), 10_000, 50);
    } finally {
      if (masterPid > 0 && pidAlive(masterPid)) process.kill(masterPid, 'SIGTERM');
      else proc.kill('SIGTERM');
      await exited;
    }
  });
});
