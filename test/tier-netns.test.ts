// Tiers across hosts, behind a real cache: hosts built from Linux network namespaces on one
// bridge (camera, origins A and B, edge hosts E1 and E2 pulling `A|B`, an nginx cache in front
// of E1 and E2, a client host with a few hundred DASH clients). Origin A is SIGKILLed mid-run.
// Needs root, iproute2 and nginx (docs/deploy.md has the nginx config this test writes).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ffmpegPath } from './helpers/media.js';
import { MASTER_BIN } from './helpers/server.js';
import { onPath } from './helpers/ingest.js';
import { request, waitFor } from './helpers/live.js';
import { sampleTree, cpuDelta, type TreeSample } from '../bench/procstats.js';
import { parseTimeline, type LoadSummary } from './helpers/dashLoad.js';
import { nginxBin, nginxCacheConfig } from './helpers/nginx.js';

const LOAD_BIN = fileURLToPath(new URL('./helpers/dashLoad.js', import.meta.url));
/** DASH clients on the client host; MKVCAST_TIER_CLIENTS=1000 for the figures in docs/deploy.md. */
const CLIENTS = Math.min(Number(process.env.MKVCAST_TIER_CLIENTS) || 300, 2000);
const LOAD_SECONDS = 40;
/** Origin A is killed this long after the clients start. */
const KILL_AFTER_S = 14;
/** The camera's GOP: 2 s (-g 50 at 25 fps), so a DASH segment lasts 2 s and the manifest may be cached 1 s. */
const GOP_FRAMES = 50;
const PORT = 8000;
const CACHE_PORT = 8080;

/** Why this test cannot run here, or null. */
async function missing(): Promise<string | null> {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'needs root (ip netns, veth, bridge)';
  if (!onPath('ip')) return 'needs ip (Debian iproute2)';
  if (!nginxBin()) return 'needs nginx (Debian nginx)';
  const probe = `mkvt-probe-${process.pid}`;
  try {
    await ip(['netns', 'add', probe]);
    await ip(['netns', 'del', probe]);
  } catch (err) {
    return `cannot create a network namespace here: ${(err as Error).message.split('\n')[0]}`;
  }
  return null;
}


function run(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout));
  });
}

const ip = (args: string[]): Promise<string> => run('ip', args);

// ------------------------------------------------------------------ the hosts

interface Host {
  name: string;
  ns: string;
  addr: string;
}

/**
 * A /24 for this run: one bridge in a "switch" namespace, a veth per host into it, and one
 * from this (the test's) namespace so that the test can reach every host. The third octet
 * differs per run; a subnet already on one of this machine's interfaces is skipped.
 */
class Network {
  readonly prefix: string;
  readonly hosts = new Map<string, Host>();
  #subnet = '';
  #switch: string;
  #namespaces: string[] = [];

  constructor() {
    this.prefix = `mkvt${process.pid}`;
    this.#switch = `${this.prefix}-sw`;
  }

  get subnet(): string {
    return this.#subnet;
  }

  async create(names: string[]): Promise<void> {
    await removeStale();
    const used = await ip(['-o', '-4', 'addr']);
    for (let i = 0; i < 200 && !this.#subnet; i++) {
      const candidate = `10.77.${(process.pid + i) % 200 + 20}`;
      if (!used.includes(` ${candidate}.`)) this.#subnet = candidate;
    }
    await this.#add(this.#switch);
    await ip(['-n', this.#switch, 'link', 'add', 'br0', 'type', 'bridge']);
    await ip(['-n', this.#switch, 'link', 'set', 'dev', 'br0', 'up']);
    // The test's own leg: .1 here, named after the run so that it is unique in this namespace.
    const leg = `mkvt${process.pid % 100000}`;
    await ip(['link', 'add', 'name', leg, 'type', 'veth', 'peer', 'name', 'test', 'netns', this.#switch]);
    await this.#plug('test');
    await ip(['addr', 'add', `${this.#subnet}.1/24`, 'dev', leg]);
    await ip(['link', 'set', 'dev', leg, 'up']);
    let n = 10;
    for (const name of names) {
      const host: Host = { name, ns: `${this.prefix}-${name}`, addr: `${this.#subnet}.${n++}` };
      await this.#add(host.ns);
      await ip(['-n', host.ns, 'link', 'set', 'dev', 'lo', 'up']);
      await ip(['link', 'add', 'name', 'eth0', 'netns', host.ns, 'type', 'veth', 'peer', 'name', `p-${name}`, 'netns', this.#switch]);
      await this.#plug(`p-${name}`);
      await ip(['-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', 'eth0']);
      await ip(['-n', host.ns, 'link', 'set', 'dev', 'eth0', 'up']);
      this.hosts.set(name, host);
    }
  }

  host(name: string): Host {
    return this.hosts.get(name)!;
  }

  async #add(ns: string): Promise<void> {
    await ip(['netns', 'add', ns]);
    this.#namespaces.push(ns);
  }

  async #plug(port: string): Promise<void> {
    await ip(['-n', this.#switch, 'link', 'set', 'dev', port, 'master', 'br0']);
    await ip(['-n', this.#switch, 'link', 'set', 'dev', port, 'up']);
  }

  /** Kills what is left in each namespace (processes this test started, and their children), then removes it. */
  async destroy(): Promise<void> {
    for (const ns of this.#namespaces.reverse()) await removeNamespace(ns);
    this.#namespaces = [];
  }
}

async function removeNamespace(ns: string): Promise<void> {
  const pids = await ip(['netns', 'pids', ns]).catch(() => '');
  for (const pid of pids.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  // Deleting a namespace deletes its veth ends, and so their peers (the test's leg included).
  await ip(['netns', 'del', ns]).catch(() => undefined);
}

/** Namespaces of earlier runs of this test whose process is gone (killed before its cleanup). */
async function removeStale(): Promise<void> {
  const list = await ip(['netns', 'list']).catch(() => '');
  for (const line of list.split('\n')) {
    const m = /^(mkvt(\d+)-\S+)/.exec(line);
    if (!m || Number(m[2]) === process.pid) continue;
    if (existsSync(`/proc/${m[2]}`)) continue;
    await removeNamespace(m[1]!);
  }
}

// ------------------------------------------------------------------ processes in hosts

interface Proc {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<unknown>;
}

const procs: Proc[] = [];

/** `cmd args` in `host`'s namespace (`ip netns exec` execs it: the pid is the command's). */
function startIn(host: Host, cmd: string, args: string[]): Proc {
  const proc = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (c: Buffer): void => {
    output = (output + c.toString()).slice(-200_000); // bounded: the tail is what explains a failure
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const p = { proc, output: () => output, exited };
  procs.push(p);
  return p;
}

/** A master in `host`, listening on its address; resolves once it says so. */
async function master(host: Host, args: string[]): Promise<Proc> {
  const m = startIn(host, process.execPath, [MASTER_BIN, ...args, '--host', host.addr, '--port', String(PORT)]);
  await waitFor(`${host.name}'s master to listen`, () => {
    if (m.proc.exitCode !== null) throw new Error(`${host.name}'s master exited:\n${m.output()}`);
    return m.output().includes(`listening on http://${host.addr}:${PORT}/`);
  }, 20_000, 50);
  return m;
}

const url = (host: Host, p: string, port = PORT): string => `http://${host.addr}:${port}${p}`;

async function waitForLive(host: Host, port = PORT, resource = '/live/x'): Promise<void> {
  await waitFor(`${url(host, resource, port)}`, async () => (await request(url(host, resource, port), { method: 'HEAD' })).status === 200, 20_000, 100);
}

/** A 10 s VP8/Opus WebM clip with 2 s GOPs: the camera's. */
async function cameraClip(dir: string): Promise<string> {
  const file = path.join(dir, 'camera.webm');
  await run(ffmpegPath, [
    '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '10', '-map', '0:v', '-map', '1:a', '-c:v', 'libvpx', '-b:v', '450k', '-g', String(GOP_FRAMES), '-keyint_min', String(GOP_FRAMES),
    '-deadline', 'realtime', '-cpu-used', '8', '-c:a', 'libopus', '-b:a', '48k', '-f', 'webm', file,
  ], 120_000);
  return file;
}

/** Segments (t → sha-256) of the window a host's manifest lists. */
async function windowHashes(base: string): Promise<Map<number, string>> {
  const mpd = await request(`${base}/manifest.mpd`);
  assert.equal(mpd.status, 200, `${base}/manifest.mpd: ${mpd.status}`);
  const out = new Map<number, string>();
  for (const { t } of parseTimeline(mpd.body.toString()).segments) {
    const res = await request(`${base}/${t}.webm`);
    if (res.status === 200) out.set(t, createHash('sha256').update(res.body).digest('hex'));
  }
  return out;
}

/** Segments both hosts list, and those whose bytes differ. */
async function compareHosts(e1: Host, e2: Host): Promise<{ same: number; differ: number[] }> {
  const [one, two] = await Promise.all([windowHashes(url(e1, '/live/x')), windowHashes(url(e2, '/live/x'))]);
  let same = 0;
  const differ: number[] = [];
  for (const [t, hash] of one) {
    const other = two.get(t);
    if (other === undefined) continue;
    if (other === hash) same++;
    else differ.push(t);
  }
  return { same, differ };
}

// ------------------------------------------------------------------ the test

const reason = await missing();

describe('origin/edge tiers on separate hosts behind an nginx cache; origin A dies mid-run', { skip: reason ?? false, timeout: 150_000 }, () => {
  const net = new Network();
  let dir = '';
  let load: LoadSummary;
  let cacheLog = '';
  let killAtMs = 0;
  const before1 = { same: 0, differ: [] as number[] };
  const after1 = { same: 0, differ: [] as number[] };
  const withB = { same: 0, differ: [] as number[] };
  const cpu = new Map<string, number>();
  let pulledFromB = 0;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'mkvcast-tier-'));
    await net.create(['camera', 'a', 'b', 'e1', 'e2', 'cache', 'client']);
    const [camera, a, b, e1, e2, cache, client] = ['camera', 'a', 'b', 'e1', 'e2', 'cache', 'client'].map((n) => net.host(n)) as Host[];
    const clip = await cameraClip(dir);
    await master(camera!, [`x=${clip}`, '--loop', '--edges', '1']);
    await waitForLive(camera!);
    const origins = await Promise.all([a!, b!].map((o) => master(o, [`x=${url(camera!, '/live/x')}`, '--edges', '1', '--buffer', '20'])));
    await Promise.all([waitForLive(a!), waitForLive(b!)]);
    const pull = `x=${url(a!, '/live/x')}|${url(b!, '/live/x')}`;
    const edges = await Promise.all([e1!, e2!].map((e) => master(e, [pull, '--edges', '2', '--buffer', '20'])));
    await Promise.all([waitForLive(e1!), waitForLive(e2!)]);
    await Promise.all([waitForLive(e1!, PORT, '/live/x/manifest.mpd'), waitForLive(e2!, PORT, '/live/x/manifest.mpd')]);

    await mkdir(path.join(dir, 'nginx'), { recursive: true });
    const conf = path.join(dir, 'nginx', 'nginx.conf');
    await writeFile(conf, nginxCacheConfig({ dir: path.join(dir, 'nginx'), listen: `${cache!.addr}:${CACHE_PORT}`, edges: [`${e1!.addr}:${PORT}`, `${e2!.addr}:${PORT}`] }));
    const nginx = startIn(cache!, nginxBin()!, ['-p', path.join(dir, 'nginx'), '-c', conf, '-e', path.join(dir, 'nginx', 'error.log'), '-g', 'daemon off;']);
    await waitForLive(cache!, CACHE_PORT, '/live/x/manifest.mpd').catch(async (err: Error) => {
      throw new Error(`${err.message}\nnginx: ${nginx.output()}\n${await readFile(path.join(dir, 'nginx', 'error.log'), 'utf8').catch(() => '')}`);
    });
    await sleep(4000); // a few segments in every edge host's window before the first comparison
    Object.assign(before1, await compareHosts(e1!, e2!));

    const tree = (): Map<string, TreeSample> => new Map([
      ['origin A', sampleTree(origins[0]!.proc.pid!)], ['origin B', sampleTree(origins[1]!.proc.pid!)],
      ['edge host E1', sampleTree(edges[0]!.proc.pid!)], ['edge host E2', sampleTree(edges[1]!.proc.pid!)], ['nginx', sampleTree(nginx.proc.pid!)],
    ]);
    const base = url(cache!, '/live/x', CACHE_PORT);
    const loader = startIn(client!, process.execPath, [LOAD_BIN, JSON.stringify({ base, clients: CLIENTS, seconds: LOAD_SECONDS, streams: 2 })]);
    let stdout = '';
    loader.proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    const t0 = Date.now();
    const start = tree();
    let killedAfterS = 0;
    await sleep(KILL_AFTER_S * 1000); // the clients run a while on A
    const aTree = start.get('origin A')!;
    const aEnd = sampleTree(origins[0]!.proc.pid!);
    origins[0]!.proc.kill('SIGKILL');
    killAtMs = Date.now();
    killedAfterS = (killAtMs - t0) / 1000;
    await origins[0]!.exited;
    await loader.exited;
    const end = tree();
    const seconds = (Date.now() - t0) / 1000;
    for (const [what, sample] of start) {
      // A's share is over its life: up to its death.
      cpu.set(what, what === 'origin A' ? cpuDelta(aTree, aEnd) / killedAfterS : cpuDelta(sample, end.get(what)!) / seconds);
    }
    assert.equal(loader.proc.exitCode, 0, `the load generator failed: ${loader.output()}`);
    load = JSON.parse(stdout.trim().split('\n').pop()!) as LoadSummary;
    Object.assign(after1, await compareHosts(e1!, e2!));
    Object.assign(withB, await compareHosts(e1!, b!));
    cacheLog = await readFile(path.join(dir, 'nginx', 'upstream.log'), 'utf8');
    const clients = JSON.parse((await request(url(b!, '/api/v1/clients'))).body.toString()) as { clients: Array<{ userAgent: string }> };
    pulledFromB = clients.clients.filter((c) => c.userAgent === 'mkvcast').length;
  });

  after(async () => {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
    await Promise.race([Promise.all(procs.map((p) => p.exited)), sleep(5000)]);
    await net.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every client got every segment of its period, the t sequence unbroken through A\'s death', (t) => {
    const segments = load.clients.map((c) => c.segments);
    const breaks = load.clients.flatMap((c, i) => c.breaks.map((b) => `client ${i}: ${b}`));
    t.diagnostic(`${load.clients.length} clients, ${Math.min(...segments)}–${Math.max(...segments)} segments each, ` +
      `${load.segmentRequests} segment requests (${load.notFound} answered 404 and asked again), ${load.manifestRequests} manifests, ` +
      `${(load.segmentBytes / 1e6).toFixed(1)} MB; origin A killed ${((killAtMs - load.startedAt) / 1000).toFixed(1)} s into the run`);
    assert.equal(load.clients.length, CLIENTS);
    assert.deepEqual(breaks.slice(0, 10), [], `${breaks.length} breaks`);
    assert.equal(load.clients.reduce((n, c) => n + c.errors, 0), 0, 'request errors');
    // 40 s of 2 s segments, from ~2 s into the run: every client went on well past the kill.
    const lateStart = Math.min(...load.clients.map((c) => c.lastAt)) - killAtMs;
    assert.ok(lateStart > 15_000, `a client's last segment came only ${lateStart} ms after A's death`);
    assert.ok(Math.min(...segments) >= (LOAD_SECONDS - 6) / 2, `a client got only ${Math.min(...segments)} segments`);
    assert.deepEqual(load.differing, [], 'the same t fetched twice gave different bytes');
  });

  it('the edge hosts saw about one request per segment per cache, not one per client', (t) => {
    const lines = cacheLog.trim().split('\n').map((l) => l.split(' '));
    // Fields: upstream address, cache status, URI, status.
    const upstream = lines.filter(([addr, , uri]) => addr !== '-' && /\/\d+\.webm$/.test(uri!));
    const upstreamOk = upstream.filter(([, , , status]) => status === '200');
    const manifests = lines.filter(([addr, , uri]) => addr !== '-' && uri!.endsWith('/manifest.mpd')).length;
    t.diagnostic(`segments: ${load.distinct} distinct, ${load.segmentRequests} asked by clients, ${upstream.length} asked of the edge hosts ` +
      `(${upstreamOk.length} with 200); manifests: ${load.manifestRequests} asked by clients, ${manifests} of the edge hosts`);
    assert.ok(upstreamOk.length <= load.distinct + 2, `${upstreamOk.length} segment fetches from the edges for ${load.distinct} segments`);
    assert.ok(upstream.length <= load.distinct * 2 + 10, `${upstream.length} segment requests (404s included) to the edges for ${load.distinct} segments`);
    assert.ok(load.segmentRequests >= upstream.length * 50, 'the cache took the clients\' load');
  });

  it('E1 and E2 serve the same bytes for the same t, before and after the fail-over, and so does origin B itself', (t) => {
    t.diagnostic(`E1 and E2: ${before1.same} segments alike before, ${after1.same} after; E1 and B: ${withB.same} alike after`);
    assert.deepEqual([before1.differ, after1.differ, withB.differ], [[], [], []]);
    assert.ok(before1.same >= 2 && after1.same >= 5, `too few segments compared: ${before1.same} before, ${after1.same} after`);
    // The edge hosts kept the timestamps across the fail-over: their t are B's (and A's, and the camera's).
    assert.ok(withB.same >= 5, `only ${withB.same} of E1's segments found at the same t, with the same bytes, on B`);
  });

  it('both edge hosts pull from B now; the endless stream through the cache kept its players', (t) => {
    assert.equal(pulledFromB, 2, 'mkvcast pullers on B');
    for (const s of load.streams) {
      t.diagnostic(`a player of /live/x through nginx: HTTP ${s.status}, ${(s.bytes / 1e6).toFixed(1)} MB, longest wait ${s.longestGapMs} ms`);
      assert.equal(s.status, 200);
      assert.equal(s.end, 'time', 'its connection stayed open');
      assert.ok(s.bytes > (LOAD_SECONDS * 300_000) / 8 / 2, `${s.bytes} bytes`);
      assert.ok(s.longestGapMs < 5000, `a wait of ${s.longestGapMs} ms`);
    }
  });

  it('figures: CPU per tier over the run', (t) => {
    for (const [what, cores] of cpu) t.diagnostic(`${what}: ${cores.toFixed(3)} core (average over the run)`);
    assert.ok(cpu.size === 5);
  });
});
