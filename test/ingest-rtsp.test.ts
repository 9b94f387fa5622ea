// An RTSP camera pulled through rtsp://: GStreamer's RTSP server (Debian's
// gir1.2-gst-rtsp-server-1.0 driven by test/helpers/rtspCamera.py) serves an H.264 test
// pattern on a free loopback port; the master reads it through ffmpeg (npm's, which has the
// RTSP demuxer) and a player gets H.264 that decodes. Skipped, with the reason, where the
// GStreamer packages are missing (.ci/run installs them where it can).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { collect, ffmpegPath, probe } from './helpers/media.js';
import { startMaster, type RunningMaster } from './helpers/server.js';
import { assertNoStack, codecsOf, errorsIgnoringCut, stopQuietly, waitFor, waitForStream } from './helpers/live.js';
import { executable, killAllTools, killTool, startTool, type Tool } from './helpers/ingest.js';

/** Debian's Python: python3-gi is installed for it, not for another python3 on PATH. */
const PYTHON = '/usr/bin/python3';
const CAMERA = fileURLToPath(new URL('../../test/helpers/rtspCamera.py', import.meta.url));
/** How long the player records: at 25 fps, one GOP a second. */
const RECORD_MS = 4000;

/** Why the camera cannot run here, or undefined when it can. */
function cameraMissing(): string | undefined {
  if (!executable(PYTHON)) return `no ${PYTHON}`;
  const check = spawnSync(PYTHON, [CAMERA, '--check'], { encoding: 'utf8', timeout: 20_000 });
  if (check.status === 0) return undefined;
  return (check.stderr || check.error?.message || `exit ${check.status}`).trim();
}

const missing = cameraMissing();
if (missing) console.log(`# RTSP camera test skipped: ${missing}`);

describe('an RTSP camera', () => {
  after(() => killAllTools());

  it('master cam=rtsp://127.0.0.1:P/cam pulls gst-rtsp-server\'s H.264; a player gets video frames that decode', { timeout: 90_000, ...(missing ? { skip: missing } : {}) }, async () => {
    let camera: Tool | undefined;
    let master: RunningMaster | undefined;
    try {
      camera = startTool(PYTHON, [CAMERA]);
      const cam = camera;
      const port = await waitFor('the RTSP camera to listen', () => {
        if (!cam.running()) throw new Error(`the camera exited: ${cam.output()}`);
        return /^listening (\d+)$/m.exec(cam.output())?.[1];
      }, 20_000, 50);
      master = await startMaster([`cam=rtsp://127.0.0.1:${port}/cam`, '--ffmpeg', ffmpegPath, '--edges', '1', '--log-format', 'json']);
      const m = master;
      await waitForStream(m, 'cam', 20_000).catch((err: Error) => {
        throw new Error(`${err.message}\ncamera: ${cam.output()}\nstderr:\n${m.stderr()}`);
      });
      const got = await collect(m.url('/live/cam'), { ms: RECORD_MS });
      assert.equal(got.status, 200);
      assert.equal(got.end, 'ms', 'the stream stayed live while the player recorded');
      const p = await probe(got.file);
      assert.equal(errorsIgnoringCut(p), '', `decode errors; stderr:\n${m.stderr()}`);
      assert.deepEqual(codecsOf(p), ['video:h264']);
      assert.equal(p.firstVideoKey, true, 'the first video frame is a keyframe');
      // More than one GOP: the camera's frames kept coming through ffmpeg and the source.
      assert.ok(p.videoPackets > 25, `${p.videoPackets} video frames in ${RECORD_MS} ms\nstderr:\n${m.stderr()}`);
      assertNoStack(m.stderr());
    } finally {
      await stopQuietly(master);
      await killTool(camera);
    }
  });
});
