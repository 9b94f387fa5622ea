// The supervisor and its counters: a child that cannot start ends the master with one line
// and exit 1 (nothing left running), and per-edge connection counts come back to 0 once
// publishers and handed-back players are gone.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { collect, makeClip } from './helpers/media.js';
import { MASTER_BIN, startMaster, type RunningMaster } from './helpers/server.js';
import { pidsWithArg, stopQuietly, waitFor, waitForStats } from './helpers/live.js';
import { rawUpload } from './helpers/ingest.js';

/** Runs the master with MKVCAST_FAIL_START=<role>; resolves with its exit and stderr. */
function failingStart(role: string, marker: string): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [MASTER_BIN, '--name', marker, '--port', '0', '--host', '127.0.0.1', '-'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, MKVCAST_FAIL_START: role },
  });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    proc.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('a child that cannot start', () => {
  for (const role of ['source', 'edge']) {
    it(`${role}: the master prints one line and exits 1, leaving no process behind`, { timeout: 40_000 }, async () => {
      const marker = `failstart${role}${process.pid}`;
      const { code, stderr } = await failingStart(role, marker);
      assert.equal(code, 1, stderr);
      const lines = stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line, not:\n${stderr}`);
      assert.match(lines[0]!, new RegExp(`cannot start: ${role}( \\d+)? failed to start 5 times in a row: failing at start`));
      await waitFor('no child left running', async () => (await pidsWithArg(marker)).length === 0, 5000);
    });
  }
});

describe('connection counters', () => {
  let master: RunningMaster | undefined;
  after(() => stopQuietly(master));

  it('edges count 0 connections once publishers and handed-back players are gone', { timeout: 60_000 }, async () => {
    // Two slots per edge: a third and fourth player are handed back between the edges.
    master = await startMaster(['--edges', '2', '--clients-per-edge', '2', '--grace', '0']);
    const m = master;
    const data = await readFile(await makeClip('webm-vp8-opus', { seconds: 2 }));
    for (let i = 0; i < 4; i++) {
      const upload = await rawUpload(m.port, `/live/p${i}`, data, { framing: 'length', oneWrite: true });
      assert.equal(upload.status, 200, upload.answer);
    }
    // 16 KiB every 150 ms: the stream stays live for a few seconds.
    const long = await readFile(await makeClip('webm-vp8-opus', { seconds: 10 }));
    const live = rawUpload(m.port, '/live/live', long, { framing: 'length', oneWrite: false, stepMs: 150, timeoutMs: 40_000 });
    await waitForStats(m, 'the live stream', (s) => (s.streams ?? []).some((x) => x.name === 'live'), 10_000);
    const players = Array.from({ length: 4 }, () => collect(m.url('/live/live'), { ms: 1500 }));
    for (const p of await Promise.all(players)) assert.equal(p.status, 200);
    assert.equal((await live).status, 200);
    const s = await waitForStats(m, 'every edge to count 0 connections', (x) => x.players === 0 && x.edges!.every((e) => e.connections === 0), 15_000);
    assert.equal(s.edges!.length, 2);
  });
});
