// The command line: --help, and every kind of bad option answered with one clear line on
// stderr and exit code 2 (a usage error), never a stack trace.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { makeClip } from './helpers/media.js';
import { runMaster, startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, pidAlive, pidsWithArg, runCli, stopQuietly, waitFor, waitForStats } from './helpers/live.js';

/** Every option the master documents (packages/master/src/cli.ts); --help must list them all. */
const OPTIONS = [
  '--edges',
  '--clients-per-edge',
  '--port',
  '--host',
  '--name',
  '--loop',
  '--buffer',
  '--buffer-mb',
  '--burst',
  '--player-backlog-kb',
  '--slow-timeout',
  '--log-level',
  '--ffmpeg',
  '--help',
];

describe('master --help', () => {
  it('lists every option and exits 0 without starting anything', { timeout: 20_000 }, async () => {
    const { code, stdout, stderr } = await runCli(['--help']);
    assert.equal(code, 0, stderr);
    const text = stdout + stderr;
    for (const option of OPTIONS) assert.match(text, new RegExp(`${option}\\b`), `--help does not list ${option}:\n${text}`);
    assert.doesNotMatch(text, /listening on/);
  });

  it('-h is the same as --help', { timeout: 20_000 }, async () => {
    const [long, short] = await Promise.all([runCli(['--help']), runCli(['-h'])]);
    assert.equal(short.code, 0);
    assert.equal(short.stdout, long.stdout);
  });
});

describe('usage errors: exit 2, one clear line, no stack', () => {
  let clip: string;
  before(async () => {
    clip = await makeClip('webm-vp8-opus');
  });

  const cases: { why: string; args: (clip: string) => string[]; says: RegExp }[] = [
    { why: '--edges 0', args: (c) => [c, '--edges', '0'], says: /--edges/ },
    { why: '--edges -3', args: (c) => [c, '--edges', '-3'], says: /--edges/ },
    { why: '--edges 1.5', args: (c) => [c, '--edges', '1.5'], says: /--edges/ },
    { why: '--edges with no value (last on the line)', args: (c) => [c, '--edges'], says: /--edges/ },
    { why: '--port abc', args: (c) => [c, '--port', 'abc'], says: /--port/ },
    { why: '--port 70000', args: (c) => [c, '--port', '70000'], says: /--port/ },
    { why: '--clients-per-edge 0', args: (c) => [c, '--clients-per-edge', '0'], says: /--clients-per-edge/ },
    { why: 'an unknown option', args: (c) => [c, '--frobnicate', '3'], says: /frobnicate/ },
    { why: '--log-level loud', args: (c) => [c, '--log-level', 'loud'], says: /log-level|loud/ },
    { why: '--burst -1', args: (c) => [c, '--burst', '-1'], says: /--burst/ },
    { why: 'a stream name with a slash', args: (c) => [c, '--name', 'a/b'], says: /--name/ },
    { why: 'two unnamed inputs', args: (c) => [c, c], says: /name each one/ },
    { why: 'two inputs with one name', args: (c) => [`a=${c}`, `a=${c}`], says: /named 'a'/ },
    { why: 'a tcp input without a port', args: () => ['tcp://127.0.0.1'], says: /not a usable URL/ },
    { why: '--loop with stdin', args: () => ['-', '--loop'], says: /--loop/ },
    { why: '--ffmpeg with an empty path', args: (c) => [c, '--ffmpeg='], says: /--ffmpeg needs a path/ },
  ];

  for (const c of cases) {
    it(c.why, { timeout: 20_000 }, async () => {
      const args = c.args(clip);
      // Should the error go unnoticed, the master must not take a real port.
      const listen = args.includes('--port') ? ['--host', '127.0.0.1'] : ['--port', '0', '--host', '127.0.0.1'];
      const { code, stderr } = await runMaster([...listen, ...args]);
      assert.equal(code, 2, `exit code; stderr:\n${stderr}`);
      assertNoStack(stderr);
      const lines = stderr.split('\n').filter((l) => l.trim() !== '');
      // One line; yargs' choice errors add an indented second line, which still reads as one message.
      assert.ok(lines.length >= 1 && lines.length <= 2, `expected one line:\n${stderr}`);
      assert.match(lines[0]!, /^mkvcast: /);
      assert.match(lines.join('\n'), c.says);
      assert.doesNotMatch(stderr, /listening on/);
    });
  }
});

describe('a port that is already taken', () => {
  it('a second master on the same port: non-zero exit, one clear line, no child left behind', { timeout: 30_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus');
    let first: RunningMaster | undefined;
    // The children get the stream name in their argv: a unique one finds them in /proc.
    const marker = `port-taken-${process.pid}-${Date.now()}`;
    try {
      first = await startMaster([clip, '--loop', '--edges', '1']);
      const { code, stderr } = await runMaster(
        [clip, '--edges', '2', '--name', marker, '--port', String(first.port), '--host', '127.0.0.1'],
        15_000,
      );
      assert.notEqual(code, null, 'the master hung and had to be killed');
      assert.notEqual(code, 0, stderr);
      assertNoStack(stderr);
      assert.match(stderr, /EADDRINUSE|in use/i);
      assert.equal(stderr.split('\n').filter((l) => /error|cannot/i.test(l)).length, 1, stderr);
      await waitFor('the failed master\'s children to exit', async () => (await pidsWithArg(marker)).length === 0, 5000);
      // The first master is unaffected.
      const s = await waitForStats(first, 'the first master to answer');
      assert.ok(pidAlive(s.pids.source!));
      assert.equal((await stopQuietly(first), first.proc.exitCode), 0);
    } finally {
      await stopQuietly(first);
    }
  });
});
