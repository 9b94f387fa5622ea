// dash.js in a real Chromium (Debian's /usr/bin/chromium through playwright-core; no browser is
// downloaded) plays the server's own player page, /player/dash.html, on live WebM streams, VP8,
// VP9 and audio-only Opus: it plays 5 s of media past where it started, and dash.js reports no error.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Response } from 'playwright-core';
import { waitForSegments } from './helpers/dash.js';
import { killTool, startTool, toolExit } from './helpers/ingest.js';
import { freePort, request, stopQuietly, waitFor } from './helpers/live.js';
import { nginxBin, nginxCacheConfig } from './helpers/nginx.js';
import { makeClip } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
/** Every wait on the page is bounded by this. */
const PAGE_WAIT_MS = 40_000;
/** Media seconds the player must play past its first picture. */
const PLAY_S = 5;

// What the test reads of the page (the test project is compiled without the DOM lib).
interface PageVideo {
  currentTime: number;
  paused: boolean;
  readyState: number;
}
declare const document: { getElementById(id: 'video'): PageVideo | null };
declare const window: { mkvcastDash?: { errors: string[] }; firstTime?: number };

const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (Debian package chromium; .ci/run installs it as root)`;

/**
 * Opens the player page at `url` and waits until its video has played PLAY_S seconds past its
 * first picture, with no dash.js error and no failed request. Returns the page's responses.
 */
async function playsOnPage(browser: Browser, url: string, name: string): Promise<Response[]> {
  const page = await browser.newPage();
  const failed: string[] = [];
  const responses: Response[] = [];
  page.on('response', (r) => {
    responses.push(r);
    // A 404 for a segment the player asked a moment early is part of live DASH; anything else is not.
    if (r.status() >= 400 && !/\/\d+\.webm$/.test(r.url())) failed.push(`${r.status()} ${r.url()}`);
  });
  try {
    await page.goto(url, { timeout: PAGE_WAIT_MS });
    await page.waitForFunction(() => {
      const v = document.getElementById('video');
      if (!v || v.paused || v.readyState < 3) return false;
      window.firstTime ??= v.currentTime;
      return true;
    }, undefined, { timeout: PAGE_WAIT_MS, polling: 100 });
    await page
      .waitForFunction(
        (seconds) => {
          const v = document.getElementById('video')!;
          return v.currentTime - window.firstTime! > seconds;
        },
        PLAY_S,
        { timeout: PAGE_WAIT_MS, polling: 200 },
      )
      .catch(async (err: Error) => {
        const state = await page.evaluate(() => ({ t: document.getElementById('video')?.currentTime, first: window.firstTime, errors: window.mkvcastDash?.errors }));
        throw new Error(`${name} did not play ${PLAY_S} s: ${JSON.stringify(state)}\n${err.message}`);
      });
    const errors = await page.evaluate(() => window.mkvcastDash?.errors ?? ['no player']);
    assert.deepEqual(errors, [], 'dash.js errors');
    assert.deepEqual(failed, [], 'failed requests');
    return responses;
  } finally {
    await page.close();
  }
}

describe('dash.js in Chromium plays the DASH manifest', { skip }, () => {
  let master: RunningMaster;
  let browser: Browser;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-dash-player-'));
    const [vp8, vp9, opus] = await Promise.all([makeClip('webm-vp8-opus', { seconds: 8 }), makeClip('webm-vp9-opus', { seconds: 8 }), makeClip('audio-only', { seconds: 8 })]);
    master = await startMaster([`vp8=${vp8}`, `vp9=${vp9}`, `opus=${opus}`, '--loop', '--edges', '2']);
    await Promise.all([waitForSegments(master, 'vp8', 3), waitForSegments(master, 'vp9', 3), waitForSegments(master, 'opus', 2)]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--autoplay-policy=no-user-gesture-required'] });
  });

  after(async () => {
    await browser?.close();
    await stopQuietly(master);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const [name, codecs] of [['vp8', 'vp8,opus'], ['vp9', /^vp09\.\d\d\.\d\d\.\d\d,opus$|^vp9,opus$/], ['opus', 'opus']] as const) {
    it(`${name}: /player/dash.html?stream=${name} plays ${PLAY_S} s past its first picture, with no dash.js error`, { timeout: 90_000 }, async () => {
      const m = await waitForSegments(master, name, 2);
      const rep = m.mpd.children[0]!.children[0]!.children.find((c) => c.name === 'Representation')!;
      if (typeof codecs === 'string') assert.equal(rep.attrs.codecs, codecs);
      else assert.match(rep.attrs.codecs ?? '', codecs);
      await playsOnPage(browser, master.url(`/player/dash.html?stream=${name}`), name);
    });
  }

  it(`vp8 through nginx with docs/nginx-mkvcast.conf: the page, dash.js and the segments come through the cache, and it plays ${PLAY_S} s`, { timeout: 90_000, skip: nginxBin() === null ? 'needs nginx (Debian nginx; .ci/run installs it as root)' : false }, async () => {
    const conf = path.join(dir, 'nginx', 'nginx.conf');
    await mkdir(path.join(dir, 'nginx'), { recursive: true });
    const port = await freePort();
    const upstream = `127.0.0.1:${master.port}`;
    await writeFile(conf, nginxCacheConfig({ dir: path.join(dir, 'nginx'), listen: `127.0.0.1:${port}`, edges: [upstream, upstream] }));
    const nginx = startTool(nginxBin()!, ['-p', path.join(dir, 'nginx'), '-c', conf, '-e', path.join(dir, 'nginx', 'error.log'), '-g', 'daemon off;']);
    try {
      const viaCache = `http://127.0.0.1:${port}`;
      await waitFor('nginx to answer', async () => (await request(`${viaCache}/live/vp8/manifest.mpd`).catch(() => null))?.status === 200, 20_000);
      const responses = await playsOnPage(browser, `${viaCache}/player/dash.html?stream=vp8`, 'vp8 through nginx');
      // Every answer the page had came through nginx; the DASH files and dash.js through its cache
      // (it adds X-Cache there), segments among them.
      const segments = responses.filter((r) => /\/\d+\.webm$/.test(r.url()) && r.status() === 200);
      assert.ok(segments.length >= 2, `${segments.length} segments played`);
      for (const r of responses) {
        assert.ok(r.url().startsWith(viaCache), `${r.url()} did not go through nginx`);
        if (!/\/(live|player)\//.test(r.url())) continue;
        assert.match(String(r.headers()['x-cache']), /^(HIT|MISS|EXPIRED|UPDATING|STALE|REVALIDATED)$/, `${r.url()}: not through nginx's cache`);
      }
    } finally {
      // SIGTERM: nginx's master stops its workers, which hold its output pipes (a SIGKILLed
      // master would leave them running).
      nginx.proc.kill('SIGTERM');
      await toolExit(nginx, 'nginx', 10_000).catch(() => killTool(nginx));
    }
  });

  it('serves dash.js with the page: the script and the page answer 200', async () => {
    const js = await request(master.url('/player/dash.all.min.js'));
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.ok(js.body.length > 100_000, `${js.body.length} bytes`);
    const page = await request(master.url('/player/dash.html'));
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /dash\.all\.min\.js/);
  });
});
