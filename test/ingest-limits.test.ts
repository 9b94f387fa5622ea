// Published streams are bounded: past --max-published a new name is refused with 503,
// while live names keep working and a slot frees once a stream ends.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { makeClip } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { request, stopQuietly, waitFor } from './helpers/live.js';
import { rawUpload } from './helpers/ingest.js';

describe('--max-published', () => {
  let master: RunningMaster | undefined;
  after(() => stopQuietly(master));

  it('a publisher of one stream too many gets 503; a freed slot takes the next', { timeout: 40_000 }, async () => {
    master = await startMaster(['--edges', '1', '--max-published', '1', '--grace', '1']);
    const m = master;
    const data = await readFile(await makeClip('webm-vp8-opus', { seconds: 6 }));
    // The first upload trickles in over ~3 s, keeping stream 'a' live.
    const first = rawUpload(m.port, '/live/a', data, { framing: 'length', oneWrite: false, stepMs: 100, timeoutMs: 20_000 });
    await waitFor('stream a to be live', async () => (await request(m.url('/live/a'), { method: 'HEAD' })).status === 200, 10_000);
    const second = await rawUpload(m.port, '/live/b', data, { framing: 'length', oneWrite: true });
    assert.equal(second.status, 503, second.answer);
    assert.match(second.answer, /Retry-After/i);
    assert.equal((await request(m.url('/live/b'), { method: 'HEAD' })).status, 404);
    assert.equal((await first).status, 200);
    // After 'a' has ended (upload done, then its grace), 'b' may be published.
    await waitFor('stream a to end', async () => (await request(m.url('/live/a'), { method: 'HEAD' })).status === 404, 10_000);
    const third = await rawUpload(m.port, '/live/b', data, { framing: 'length', oneWrite: true });
    assert.equal(third.status, 200, third.answer);
  });
});
