// Real signals: SIGTERM and SIGINT to the master (and Ctrl-C to its process group) while
// players watch end every process with exit 0; SIGKILL of one edge gets it restarted and
// new players served.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { collect, makeClip, probe, type CollectResult } from './helpers/media.js';
import { MASTER_BIN, startMaster, type RunningMaster } from './helpers/server.js';
import {
  assertNoStack,
  errorsIgnoringCut,
  exitWithin,
  getStats,
  pidAlive,
  request,
  stopQuietly,
  streamName,
  waitFor,
  waitForStats,
  waitForStream,
  type Stats,
} from './helpers/live.js';

const NAME = 'sig';

async function loopingMaster(edges: number): Promise<{ master: RunningMaster; clip: string }> {
  const clip = await makeClip('webm-vp8-opus', { seconds: 6 });
  const master = await startMaster([clip, '--loop', '--name', NAME, '--edges', String(edges)]);
  await waitForStream(master, NAME);
  return { master, clip };
}

function childPids(s: Stats): number[] {
  return [s.pids.source, ...s.pids.edges].filter((p): p is number => typeof p === 'number');
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  describe(`${signal} to the master while players watch`, () => {
    it('master exits 0, players\' connections end, source and edges are gone', { timeout: 30_000 }, async () => {
      let master: RunningMaster | undefined;
      try {
        ({ master } = await loopingMaster(3));
        const m = master;
        const players = Array.from({ length: 4 }, () => collect(m.url(`/live/${NAME}`), { ms: 20_000 }));
        const s = await waitForStats(m, '4 players', (x) => x.players === 4);
        const pids = childPids(s);
        assert.equal(pids.length, 4);
        const t0 = performance.now();
        m.proc.kill(signal);
        const { code, signal: by } = await exitWithin(m, 10_000);
        assert.equal(by, null, `master died of ${by}`);
        assert.equal(code, 0, m.stderr());
        const ended: CollectResult[] = await Promise.all(players);
        for (const r of ended) assert.equal(r.end === 'closed' || r.end === 'error', true, `player ended by ${r.end}`);
        assert.ok(performance.now() - t0 < 8000, 'players were closed promptly');
        await waitFor('source and edges to exit', () => pids.every((p) => !pidAlive(p)), 3000);
        assertNoStack(m.stderr());
      } finally {
        await stopQuietly(master);
      }
    });
  });
}

describe('Ctrl-C in a terminal (SIGINT to the whole process group)', () => {
  it('every process exits, the master with 0', { timeout: 30_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 6 });
    // A process group of its own, as a shell gives a job; the children inherit it.
    const proc = spawn(process.execPath, [MASTER_BIN, clip, '--loop', '--edges', '2', '--port', '0', '--host', '127.0.0.1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      const port = await waitFor('the listening line', () => /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr)?.[1], 20_000, 50);
      const base = `http://127.0.0.1:${port}`;
      const statsNow = async (): Promise<Stats> => JSON.parse((await request(`${base}/stats`)).body.toString()) as Stats;
      await waitForStream({ url: (path) => `${base}${path}` }, streamName(clip));
      const player = collect(`${base}/`, { ms: 20_000 });
      const stats = await waitFor('the player in /stats', async () => {
        const st = await statsNow();
        return st.pids && st.players === 1 ? st : undefined;
      }, 6000, 200);
      process.kill(-proc.pid!, 'SIGINT');
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
      assert.equal(code, 0, stderr);
      const watched = await player;
      assert.equal(watched.status, 200);
      const pids = childPids(stats);
      await waitFor('source and edges to exit', () => pids.every((p) => !pidAlive(p)), 3000);
      assertNoStack(stderr);
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});

describe('SIGKILL of one edge', () => {
  it('the master restarts it (new pid in /stats), other players keep flowing, new players are served by it', { timeout: 40_000 }, async () => {
    let master: RunningMaster | undefined;
    const watching: Promise<CollectResult>[] = [];
    try {
      ({ master } = await loopingMaster(2));
      const m = master;
      const url = m.url(`/live/${NAME}`);
      // One player per edge.
      watching.push(collect(url, { ms: 12_000 }), collect(url, { ms: 12_000 }));
      const before = await waitForStats(m, 'one player on each edge', (s) => s.edges?.every((e) => e.players === 1) ?? s.players === 2);
      const victim = before.pids.edges[0]!;
      const survivor = before.pids.edges[1]!;
      const t0 = performance.now();
      process.kill(victim, 'SIGKILL');
      const after = await waitForStats(
        m,
        'a new edge pid',
        (s) => s.pids.edges.length === 2 && s.pids.edges.every((p) => p !== null && p !== victim && pidAlive(p)),
        8000,
      );
      const restartMs = performance.now() - t0;
      assert.ok(restartMs < 6000, `restart took ${Math.round(restartMs)} ms`);
      assert.ok(!pidAlive(victim));
      assert.ok(after.pids.edges.includes(survivor), 'the other edge was left alone');
      const fresh = after.pids.edges.find((p) => p !== survivor)!;
      assert.ok((after.restarts ?? 1) >= 1);

      // New players: the fresh edge has the fewest, so the next ones land there.
      const arriving = Array.from({ length: 3 }, () => collect(url, { ms: 4000 }));
      await waitForStats(m, 'players on the restarted edge', (x) => (x.edges?.find((e) => e.pid === fresh)?.players ?? 0) >= 1, 4000);
      const newcomers = await Promise.all(arriving);
      for (const r of newcomers) {
        assert.equal(r.status, 200);
        const p = await probe(r.file);
        assert.equal(errorsIgnoringCut(p), '', 'a new player\'s stream decodes');
        assert.equal(p.firstVideoKey, true);
      }
      const ends = (await Promise.all(watching)).map((r) => r);
      const cut = ends.filter((r) => r.end !== 'ms');
      const kept = ends.filter((r) => r.end === 'ms');
      assert.equal(cut.length, 1, `exactly the player on the killed edge loses its connection: ${ends.map((r) => r.end)}`);
      assert.equal(kept.length, 1);
      assert.ok(kept[0]!.bytes > 300_000, `the other player got ${kept[0]!.bytes} bytes in 12 s`);
      const pk = await probe(kept[0]!.file);
      assert.equal(errorsIgnoringCut(pk), '', 'the other player\'s stream is unbroken');

      const s = await getStats(m);
      assert.ok(s.pids.edges.includes(fresh));
      assert.match(m.stderr(), /edge 1 died.*SIGKILL/);
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
      await Promise.allSettled(watching);
    }
  });
});

describe('SIGKILL of the source', () => {
  // A killed process leaves its Unix socket file behind; the restarted source must still be
  // able to listen there (or elsewhere) for the edges to reconnect.
  it('the master restarts it (new pid in /stats) and new players are served', { timeout: 40_000 }, async () => {
    let master: RunningMaster | undefined;
    try {
      ({ master } = await loopingMaster(2));
      const m = master;
      const before = await waitForStats(m, 'pids');
      const victim = before.pids.source!;
      process.kill(victim, 'SIGKILL');
      const after = await waitForStats(
        m,
        'a new source pid',
        (s) => s.pids.source !== null && s.pids.source !== victim && pidAlive(s.pids.source),
        8000,
      );
      assert.ok(!pidAlive(victim));
      await waitForStream(m, NAME, 8000);
      const got = await collect(m.url(`/live/${NAME}`), { ms: 3000 });
      assert.equal(got.status, 200);
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '');
      assert.equal(p.firstVideoKey, true);
      assert.ok(got.bytes > 50_000, `a new player got ${got.bytes} bytes in 3 s`);
      assert.deepEqual(after.pids.edges, before.pids.edges, 'the edges were not restarted');
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
    }
  });
});
