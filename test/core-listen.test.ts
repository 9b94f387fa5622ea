// The public socket's accept queue: a flash crowd needs it as long as the kernel allows
// (net.core.somaxconn), or SYNs are dropped and their clients wait 1 s, then 3 s, to retry.
// Node ignores `backlog` in listen()'s options when given a handle and asks for 511; this
// reads the queue length the kernel really holds, as `ss` shows it (Send-Q of a listener).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { makeClip } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { stopQuietly } from './helpers/live.js';

/** What the edges ask for (LISTEN_BACKLOG in packages/shared/src/config.ts). */
const ASKED = 65535;

/** `ss -Hltn` for one port: the Send-Q column of the listener, or why it cannot be read. */
function listenQueue(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    execFile('ss', ['-Hltn', `sport = :${port}`], { timeout: 10_000 }, (err, stdout) => {
      if (err) return resolve(`ss failed: ${err.message}`);
      // State Recv-Q Send-Q Local Peer
      const fields = stdout.trim().split(/\s+/);
      resolve(fields[0] === 'LISTEN' ? Number(fields[2]) : `no listener in: ${stdout}`);
    });
  });
}

function somaxconn(): number | null {
  try {
    return Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {
    return null;
  }
}

describe('public socket accept queue', () => {
  let master: RunningMaster | undefined;
  const max = somaxconn();
  before(async () => {
    if (max === null) return;
    const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
    master = await startMaster([clip, '--loop', '--edges', '2']);
  });
  after(() => stopQuietly(master));

  it('is as long as net.core.somaxconn allows, and a cap is logged once', { timeout: 60_000 }, async (t) => {
    if (max === null) {
      t.skip('no /proc/sys/net/core/somaxconn: not Linux');
      return;
    }
    const queue = await listenQueue(master!.port);
    if (typeof queue === 'string' && queue.startsWith('ss failed')) {
      t.skip(`cannot read the listen queue: ${queue}`);
      return;
    }
    assert.equal(queue, Math.min(ASKED, max), `listen backlog of port ${master!.port}`);
    const notes = master!.stderr().match(/listen backlog \d+: capped by net\.core\.somaxconn/g) ?? [];
    assert.equal(notes.length, max < ASKED ? 1 : 0, master!.stderr());
  });
});
