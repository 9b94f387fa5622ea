// Icecast under test: icecast2 with a throwaway config, fed the same looped clip in real time by
// ffmpeg through its icecast:// output. The server's figures are the icecast2 process alone;
// the ffmpeg publisher is reported apart.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isRunning, removeOnExit, spawnTracked, stopChild, tailOutput } from './children.js';
import { freePort, get, poll } from './http.js';
import { icecastXml, runAs } from './icecastConfig.js';
import { startPublisher } from './mkvcast.js';
import type { PublisherSpec, ServerUnderTest } from './server.js';

const MOUNT = '/live.webm';
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
/** Listener slots past the player count (status requests, stragglers). */
const SPARE_CLIENTS = 100;

export interface IcecastOptions {
  bin: string;
  shareDir: string;
  ffmpeg: string;
  clip: string;
  players: number;
  /** The latency bench's publisher in place of ffmpeg (which then needs no clip). */
  publisher?: PublisherSpec;
  verbose: boolean;
}

interface Running {
  dir: string;
  cleanup: { forget: () => void };
  port: number;
  password: string;
  /** http://127.0.0.1:port */
  base: string;
  icecast: ChildProcess;
  publisher: ChildProcess | null;
  icecastTail: () => string;
  publisherTail: () => string;
}

/** Starts Icecast, then the publisher, and resolves once the mount is live. */
export async function startIcecast(o: IcecastOptions): Promise<ServerUnderTest> {
  const r = await launchIcecast(o);
  const server = serverOf(r);
  try {
    await waitFor(r, 'Icecast did not answer', async () => ((await get(`${r.base}/status-json.xsl`, 2000))?.status === 200 ? true : null));
    if (o.publisher !== undefined) {
      r.publisher = startPublisher(o.publisher, { url: `${r.base}${MOUNT}`, password: r.password });
    } else {
      r.publisher = spawnTracked(o.ffmpeg, publisherArgs(o.clip, r), { stdio: ['ignore', 'pipe', 'pipe'] });
      r.publisherTail = tailOutput(r.publisher, 4000, o.verbose ? (line) => process.stderr.write(`[publisher] ${line}\n`) : undefined);
    }
    await waitFor(r, `the mount ${MOUNT} did not go live`, () => mountIsLive(r.base));
  } catch (err) {
    const detail = server.tail();
    await server.stop();
    throw new Error(`${(err as Error).message}\n${detail}`);
  }
  return server;
}

async function launchIcecast(o: IcecastOptions): Promise<Running> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-bench-icecast-'));
  const cleanup = removeOnExit(dir);
  const logDir = path.join(dir, 'log');
  await mkdir(logDir);
  const owner = runAs();
  if (owner !== null) {
    // Icecast opens its logs after switching to `owner`: it must reach and write the log dir.
    await chmod(dir, 0o755);
    await chown(logDir, owner.uid, owner.gid);
  }
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const config = path.join(dir, 'icecast.xml');
  const xml = icecastXml({ port, password, clients: o.players + SPARE_CLIENTS, dir, logDir, shareDir: o.shareDir, runAs: owner });
  // Read once, before Icecast drops root; it holds the source password.
  await writeFile(config, xml, { mode: 0o600 });
  const icecast = spawnTracked(o.bin, ['-c', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const icecastTail = tailOutput(icecast, 4000, o.verbose ? (line) => process.stderr.write(`[icecast] ${line}\n`) : undefined);
  return { dir, cleanup, port, password, base: `http://127.0.0.1:${port}`, icecast, publisher: null, icecastTail, publisherTail: () => '' };
}

/** ffmpeg publishing the clip looped, in real time, by HTTP PUT to the mount (stream copy). */
function publisherArgs(clip: string, r: Running): string[] {
  const target = `icecast://source:${r.password}@127.0.0.1:${r.port}${MOUNT}`;
  return [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip,
    '-map', '0', '-c', 'copy', '-content_type', 'video/webm', '-f', 'webm', target,
  ];
}

function serverOf(r: Running): ServerUnderTest {
  let stopped = false;
  return {
    name: 'icecast',
    url: `${r.base}${MOUNT}`,
    serverPids: () => (r.icecast.pid !== undefined && isRunning(r.icecast) ? [r.icecast.pid] : []),
    publisherPids: () => (r.publisher?.pid !== undefined && isRunning(r.publisher) ? [r.publisher.pid] : []),
    windowEnd: () => Promise.resolve({}),
    failure: () => failureOf(r),
    tail: () => tailOf(r),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (r.publisher !== null) await stopChild(r.publisher, STOP_GRACE_MS);
      // Icecast takes a second or two to wind down on SIGTERM.
      if (!(await stopChild(r.icecast, STOP_GRACE_MS))) process.stderr.write('bench: icecast ignored SIGTERM; killed it\n');
      await rm(r.dir, { recursive: true, force: true });
      r.cleanup.forget();
    },
  };
}

function tailOf(r: Running): string {
  let log = '';
  try {
    // Synchronous is fine: only for error reports.
    log = readFileSync(path.join(r.dir, 'log', 'error.log'), 'utf8').slice(-3000);
  } catch {
    // no log yet
  }
  return `--- icecast output ---\n${r.icecastTail()}--- icecast error.log ---\n${log}\n--- publisher output ---\n${r.publisherTail()}`;
}

function failureOf(r: Running): string | null {
  if (!isRunning(r.icecast)) return `icecast exited (${r.icecast.exitCode ?? r.icecast.signalCode})`;
  if (r.publisher !== null && !isRunning(r.publisher)) return `the publisher exited (${r.publisher.exitCode ?? r.publisher.signalCode})`;
  return null;
}

async function waitFor(r: Running, what: string, probe: () => Promise<true | null>): Promise<void> {
  const ok = await poll(probe, { timeoutMs: START_TIMEOUT_MS, everyMs: 100, abort: () => failureOf(r) });
  if (ok === null) throw new Error(`${what} within ${START_TIMEOUT_MS / 1000} s`);
}

/** status-json.xsl lists the mount (one source: an object; several: an array). */
async function mountIsLive(base: string): Promise<true | null> {
  const res = await get(`${base}/status-json.xsl`, 2000);
  if (res === null || res.status !== 200) return null;
  try {
    const stats = JSON.parse(res.body) as { icestats?: { source?: unknown } };
    const source = stats.icestats?.source;
    const list = Array.isArray(source) ? source : source === undefined ? [] : [source];
    return list.some((s) => String((s as { listenurl?: unknown }).listenurl ?? '').endsWith(MOUNT)) ? true : null;
  } catch {
    return null;
  }
}
