// Several upstream URLs for one stream: the first that answers serves it, in the order given.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { collect, makeClip, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { stopQuietly, streamName, waitForStream } from './helpers/live.js';

/** A port nobody listens on: bound, then closed. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('an input with fail-over upstream URLs', () => {
  const masters: RunningMaster[] = [];
  after(async () => {
    for (const m of masters) await stopQuietly(m);
  });

  it('skips a dead first URL and a 404 second one, and plays from the third', { timeout: 40_000 }, async () => {
    const clip = await makeClip('webm-vp8-opus', { seconds: 10 });
    const origin = await startMaster([clip, '--loop', '--edges', '1']);
    masters.push(origin);
    await waitForStream(origin, streamName(clip));
    const urls = [
      `http://127.0.0.1:${await deadPort()}/live/x`,
      origin.url('/live/no-such-stream'),
      origin.url(`/live/${streamName(clip)}`),
    ];
    const relay = await startMaster([`tv=${urls.join('|')}`, '--edges', '1']);
    masters.push(relay);
    await waitForStream(relay, 'tv', 15_000);
    const got = await collect(relay.url('/live/tv'), { ms: 4000 });
    assert.equal(got.status, 200);
    const p = await probe(got.file);
    assert.equal(p.errors, '');
    assert.equal(p.firstVideoKey, true);
    assert.ok(p.videoPackets >= 50, `${p.videoPackets} video frames in 4 s`);
  });
});
