// Ten streams published at once to one master, each from a different clip and each with its
// own players: every player holds only its own publisher's frames (framemd5), and GET /live/
// lists all ten.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { collect, frameMd5, probe, type CollectResult, type ProbeResult } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, mapLimit, stopQuietly, waitFor, waitForStats, type Stats } from './helpers/live.js';
import { assertFramesRun, chunkedUpload, liveList, makeDistinctClip, waitForPublished, type LiveList, type UploadResult } from './helpers/ingest.js';

const STREAMS = 10;
const PLAYERS_PER_STREAM = 2;
const SECONDS = 6;

describe(`${STREAMS} streams published at once, ${PLAYERS_PER_STREAM} players each`, () => {
  const names = Array.from({ length: STREAMS }, (_, i) => `cam${i}`);
  let clips: string[] = [];
  let master: RunningMaster | undefined;
  let uploads: UploadResult[] = [];
  let players: CollectResult[][] = [];
  let probes: (ProbeResult | null)[][] = [];
  let listing: LiveList | undefined;
  let listingError: string | undefined;
  let stats: Stats | undefined;
  let statsError: string | undefined;

  before(async () => {
    clips = await mapLimit(names, 2, (_, i) => makeDistinctClip(10 + i, SECONDS));
    const data = await Promise.all(clips.map((c) => readFile(c)));
    // The streams stay live until GET /live/ and /stats have been read: on a busy machine the
    // setup can outlast a clip. Meanwhile the publishers are silent, hence the long idle timeout.
    master = await startMaster(['--edges', '2', '--grace', '1', '--idle-timeout', '120']);
    const m = master;
    let checked!: () => void;
    const holdEnd = new Promise<void>((resolve) => (checked = resolve));
    // Half PUT, half POST: both are publishing.
    const sending = names.map((name, i) =>
      chunkedUpload(m.url(`/live/${name}`), data[i]!, { seconds: SECONDS, method: i % 2 === 0 ? 'PUT' : 'POST', holdEnd }),
    );
    const recordings = await Promise.all(
      names.map(async (name, i) => {
        await waitForPublished(m, name, sending[i]!);
        return Array.from({ length: PLAYERS_PER_STREAM }, () => collect(m.url(`/live/${name}`), { ms: SECONDS * 1000 + 60_000 }));
      }),
    );
    const want = (s: LiveList): boolean =>
      s.streams.length === STREAMS && s.streams.every((x) => x.players === PLAYERS_PER_STREAM);
    listing = await waitFor('GET /live/ to list every stream with its players', async () => {
      const l = await liveList(m.url(''));
      listing = l;
      return want(l) ? l : undefined;
    }, 20_000, 200).catch((err: Error) => {
      listingError = `${err.message}\nlast listing: ${JSON.stringify(listing)}`;
      return listing;
    });
    stats = await waitForStats(m, 'every player counted', (s) => s.players === STREAMS * PLAYERS_PER_STREAM, 20_000).catch((err: Error) => {
      statsError = err.message;
      return undefined;
    });
    checked();
    uploads = await Promise.all(sending);
    players = await Promise.all(recordings.map((r) => Promise.all(r)));
    probes = await mapLimit(players, 2, (list) => Promise.all(list.map((r) => (r.status === 200 ? probe(r.file) : Promise.resolve(null)))));
  });

  after(() => stopQuietly(master));

  it('every publisher gets 200 at the end of its upload', () => {
    assert.deepEqual(uploads.map((u) => u.status), Array(STREAMS).fill(200), `${JSON.stringify(uploads)}\nstderr:\n${master?.stderr()}`);
  });

  it('GET /live/ lists the ten streams, each with its codecs and its players', () => {
    assert.ok(listing, listingError);
    assert.equal(listingError, undefined, listingError);
    assert.deepEqual(listing.streams.map((s) => s.name).sort(), [...names].sort());
    for (const s of listing.streams) {
      assert.equal(s.url, `/live/${s.name}`);
      assert.equal(s.docType, 'webm');
      assert.deepEqual(s.tracks.map((t) => `${t.type}:${t.codec}`), ['video:V_VP8', 'audio:A_OPUS'], s.name);
      assert.equal(s.players, PLAYERS_PER_STREAM, s.name);
    }
  });

  it('/stats counts the players of each stream', () => {
    assert.ok(stats, statsError);
    for (const name of names) assert.equal(stats.playersByStream[name], PLAYERS_PER_STREAM, `${name}: ${JSON.stringify(stats.playersByStream)}`);
  });

  it('every player decodes cleanly from a keyframe until its stream ends', () => {
    players.forEach((list, s) =>
      list.forEach((r, j) => {
        const what = `${names[s]} player ${j}`;
        assert.equal(r.status, 200, what);
        assert.equal(r.end, 'closed', what);
        const p = probes[s]![j];
        assert.ok(p, what);
        assert.equal(p.errors, '', `${what}: decode errors`);
        assert.equal(p.firstVideoKey, true, `${what}: first video frame`);
      }),
    );
  });

  it('no cross-talk: each player\'s frames are a contiguous run of its own publisher\'s clip', async () => {
    const originals = await mapLimit(clips, 2, (c) => frameMd5(c));
    // The clips differ in every frame, or this test could not tell streams apart.
    const firstVideo = originals.map((lines) => lines.find((l) => l.startsWith('0,')));
    assert.equal(new Set(firstVideo).size, STREAMS, 'the ten clips must differ');
    await mapLimit(players.flatMap((list, s) => list.map((r, j) => ({ r, s, j }))), 2, async ({ r, s, j }) => {
      // At least a second of video (25 frames) and audio (50 Opus frames) each.
      assertFramesRun(await frameMd5(r.file), originals[s]!, `${names[s]} player ${j}`, 25);
    });
  });

  it('the master stays up and logs no stack trace', () => {
    assert.equal(master?.proc.exitCode, null, master?.stderr());
    assertNoStack(master?.stderr() ?? '');
  });
});
