// DASH across a tier: a second server pulls the first one's stream (an upstream input keeps
// its timestamps), and gives the same init segment and the same segment bytes and ETags for
// the same t as the origin, though it started mid-stream and got the blocks in other Clusters.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getManifest, waitForSegments } from './helpers/dash.js';
import { request, stopQuietly, waitFor, type Reply } from './helpers/live.js';
import { makeClip } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';

let origin: RunningMaster;
let relay: RunningMaster;

before(async () => {
  const clip = await makeClip('webm-vp8-opus', { seconds: 8 });
  origin = await startMaster([`cam=${clip}`, '--loop']);
  await waitForSegments(origin, 'cam', 2);
  relay = await startMaster([`cam=${origin.url('/live/cam')}`, '--edges', '2']);
});

after(async () => {
  await stopQuietly(relay);
  await stopQuietly(origin);
});

async function get(server: RunningMaster, path: string): Promise<Reply> {
  return waitFor(`${path}`, async () => {
    const reply = await request(server.url(path));
    return reply.status === 200 ? reply : undefined;
  }, 3000, 50);
}

describe('DASH on a relay host', { timeout: 90_000 }, () => {
  it('the relay lists segments at the origin\'s t and serves them byte for byte, init included', async () => {
    const r = await waitForSegments(relay, 'cam', 3);
    const o = await getManifest(origin, 'cam');
    const originTs = new Set(o.segments.map((s) => s.t));
    const shared = r.segments.filter((s) => originTs.has(s.t));
    assert.ok(shared.length >= 2, `segments at the same t: relay ${JSON.stringify(r.segments)}, origin ${JSON.stringify(o.segments)}`);
    for (const s of shared) {
      const [a, b] = await Promise.all([get(origin, `/live/cam/${s.t}.webm`), get(relay, `/live/cam/${s.t}.webm`)]);
      assert.ok(a.body.equals(b.body), `segment ${s.t}: the same bytes on both hosts`);
      assert.equal(a.headers.etag, b.headers.etag);
    }
    const [ia, ib] = await Promise.all([get(origin, '/live/cam/init.webm'), get(relay, '/live/cam/init.webm')]);
    assert.ok(ia.body.equals(ib.body), 'the same init segment');
  });
});
