// Where a new player starts: at the newest keyframe (a picture at once, the default) or, with
// ?start=next or --start next, at the next keyframe (at the live edge). Either way its first
// video frame is a keyframe. Also --max-delay 0: Segments are written as they arrive.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { collect, makeClip, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { request, stopQuietly, waitForStream } from './helpers/live.js';

for (const maxDelay of ['70', '0']) {
  describe(`joining a live stream (--max-delay ${maxDelay})`, () => {
    let master: RunningMaster | undefined;

    before(async () => {
      const clip = await makeClip('webm-vp8-opus', { seconds: 6 });
      master = await startMaster([clip, '--loop', '--name', 'j', '--edges', '1', '--max-delay', maxDelay]);
      await waitForStream(master, 'j');
    });
    after(() => stopQuietly(master));

    for (const start of ['newest', 'next']) {
      it(`?start=${start}: the first video frame is a keyframe and it decodes`, { timeout: 30_000 }, async () => {
        const got = await collect(master!.url(`/live/j?start=${start}`), { ms: 3500 });
        assert.equal(got.status, 200);
        const p = await probe(got.file);
        assert.equal(p.firstVideoKey, true);
        assert.ok(p.videoPackets > 10, `${p.videoPackets} video packets`);
      });
    }

    it('?start=next begins later in the stream than ?start=newest, joining at the same moment', { timeout: 60_000 }, async () => {
      // A keyframe may land between the two requests; of three tries, one shows the difference.
      const tries: string[] = [];
      for (let i = 0; i < 3; i++) {
        const [newest, next] = await Promise.all([
          collect(master!.url('/live/j?start=newest'), { ms: 2500 }),
          collect(master!.url('/live/j?start=next'), { ms: 2500 }),
        ]);
        const [pn, px] = await Promise.all([probe(newest.file), probe(next.file)]);
        if (px.firstPtsS! > pn.firstPtsS!) return;
        tries.push(`next ${px.firstPtsS} s, newest ${pn.firstPtsS} s`);
      }
      assert.fail(`?start=next never began after ?start=newest: ${tries.join('; ')}`);
    });

    it('?start= with another value is a 400 that names both', async () => {
      const reply = await request(master!.url('/live/j?start=soon'));
      assert.equal(reply.status, 400);
      assert.match(reply.body.toString(), /start=newest .* start=next/);
    });
  });
}
