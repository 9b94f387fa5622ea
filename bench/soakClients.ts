// The soak's clients: long-running players that record what they get and note how their
// connection ended, players that come and go, and publishers (ffmpeg -re, an icecast:// PUT)
// that come and go under new names. Every loop here stops when asked and is bounded in time.
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { isRunning, sleep, spawnTracked, tailOutput } from './children.js';
import { get } from './http.js';

/** ms since the soak started. */
export type Clock = () => number;
/** A number in [min, max), from the soak's seeded generator. */
export type Rand = (min: number, max: number) => number;

export interface LongRecord {
  name: string;
  file: string;
  startedAtMs: number;
  /** The answer's status: 200 when it played; 0 until (or without) an answer. */
  status: number;
  bytes: number;
  /** The process that held the server's end of the connection, when it could be found. */
  servedBy: number | null;
  /** Set when the connection ended before the soak cut it. */
  lost: { atMs: number; how: string } | null;
}

/**
 * A player that stays for the whole run and saves the stream to `file`. `locate` maps the
 * client's local port to the server process that holds the connection.
 */
export class LongPlayer {
  readonly record: LongRecord;
  readonly #clock: Clock;
  #req: http.ClientRequest | undefined;
  #stopping = false;
  #closed!: Promise<void>;

  constructor(name: string, file: string, clock: Clock) {
    this.record = { name, file, startedAtMs: clock(), status: 0, bytes: 0, servedBy: null, lost: null };
    this.#clock = clock;
  }

  /** Resolves with the status (200: playing), or 0 when no answer came within `timeoutMs`. */
  start(url: string, locate: (localPort: number) => number | null, timeoutMs = 5000): Promise<number> {
    return new Promise((resolve) => {
      const out = createWriteStream(this.record.file);
      out.once('error', (err) => req.destroy(new Error(`recording failed: ${err.message}`)));
      let ended = (): void => undefined;
      this.#closed = new Promise<void>((r) => (ended = r)).then(() => new Promise((r) => out.end(r)));
      const end = (how: string): void => {
        if (!this.#stopping && this.record.lost === null) this.record.lost = { atMs: this.#clock(), how };
        ended();
      };
      const req = http.get(url, { agent: false }, (res) => {
        clearTimeout(timer);
        this.record.status = res.statusCode ?? 0;
        resolve(this.record.status);
        if (res.statusCode !== 200) return void res.resume().once('end', () => end(`status ${res.statusCode}`));
        const localPort = req.socket?.localPort;
        res.once('data', () => void this.#locate(locate, localPort));
        res.on('data', (chunk: Buffer) => {
          this.record.bytes += chunk.length;
          if (!out.write(chunk)) {
            res.pause();
            out.once('drain', () => res.resume());
          }
        });
        res.once('end', () => end('the server side closed it (FIN)'));
        res.once('error', (err) => end(`connection error: ${err.message}`));
        res.once('close', () => end('connection closed'));
      });
      this.#req = req;
      req.once('error', (err) => {
        clearTimeout(timer);
        resolve(0);
        end(`request error: ${err.message}`);
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
  }

  /** The soak's own cut at the end of the run: not a loss. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#req?.destroy();
    await this.#closed;
  }

  /** The server side moves edge → master → edge on a hand-off: retry until it settles. */
  async #locate(locate: (localPort: number) => number | null, localPort: number | undefined): Promise<void> {
    if (localPort === undefined) return;
    for (let i = 0; i < 10 && this.record.servedBy === null && this.record.lost === null; i++) {
      this.record.servedBy = locate(localPort);
      if (this.record.servedBy === null) await sleep(200);
    }
  }
}

export interface LongPlayersOptions {
  url: string;
  /** Where the recordings go, one file per player. */
  dir: string;
  count: number;
  /** Starts in all, replacements and failed starts included. */
  maxStarts: number;
  clock: Clock;
  locate: (localPort: number) => number | null;
}

/**
 * `count` long-running players. One that is lost is replaced, one start per tick (a stream
 * briefly gone is retried, not flooded), so that coverage stays.
 */
export class LongPlayers {
  readonly #o: LongPlayersOptions;
  readonly #attempts: LongPlayer[] = [];
  readonly #reported = new Set<LongPlayer>();

  constructor(o: LongPlayersOptions) {
    this.#o = o;
    for (let i = 0; i < o.count; i++) this.#start();
  }

  /** Every player started, those that got no 200 included. */
  get records(): LongRecord[] {
    return this.#attempts.map((p) => p.record);
  }

  /** Reports each newly ended player through `report`, and starts a replacement if one is due. */
  tick(report: (record: LongRecord) => void): void {
    for (const player of this.#attempts) {
      if (player.record.lost === null || this.#reported.has(player)) continue;
      this.#reported.add(player);
      report(player.record);
    }
    // Playing or about to: no answer yet, or a 200 and not lost.
    const active = this.#attempts.filter((p) => p.record.lost === null && (p.record.status === 0 || p.record.status === 200));
    if (active.length < this.#o.count && this.#attempts.length < this.#o.maxStarts) this.#start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#attempts.map((p) => p.stop()));
  }

  #start(): void {
    const name = `L${this.#attempts.length + 1}`;
    const player = new LongPlayer(name, path.join(this.#o.dir, `${name}.webm`), this.#o.clock);
    this.#attempts.push(player);
    void player.start(this.#o.url, this.#o.locate);
  }
}

export interface ShortCounts {
  started: number;
  /** Answers by status ("200", "404", "503"; "none": no answer). */
  statuses: Record<string, number>;
  bytes: number;
}

/** `slots` players at a time, each on a random live stream for 1–8 s, then another. */
export class ShortPlayers {
  readonly counts: ShortCounts = { started: 0, statuses: {}, bytes: 0 };
  readonly #base: string;
  readonly #rand: Rand;
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(base: string, slots: number, rand: Rand) {
    this.#base = base;
    this.#rand = rand;
    this.#loops = Array.from({ length: slots }, () => this.#loop());
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      const names = await this.#liveNames();
      if (names.length > 0) await this.#play(names[Math.floor(this.#rand(0, names.length))]!, this.#rand(1000, 8000));
      await sleep(this.#rand(200, 1000));
    }
  }

  async #liveNames(): Promise<string[]> {
    const listing = await get(`${this.#base}/live/`, 2000);
    try {
      return listing?.status === 200 ? (JSON.parse(listing.body) as { streams: { name: string }[] }).streams.map((s) => s.name) : [];
    } catch {
      return [];
    }
  }

  #play(name: string, ms: number): Promise<void> {
    this.counts.started++;
    return new Promise((resolve) => {
      let status = 'none';
      let finished = false;
      const done = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        req.destroy();
        this.counts.statuses[status] = (this.counts.statuses[status] ?? 0) + 1;
        resolve();
      };
      const req = http.get(`${this.#base}/live/${name}`, { agent: false }, (res) => {
        status = String(res.statusCode);
        res.on('data', (chunk: Buffer) => (this.counts.bytes += chunk.length));
        res.once('close', done);
      });
      req.once('error', done);
      const timer = setTimeout(done, ms);
    });
  }
}

export interface PublisherCounts {
  started: number;
  /** Sent the whole clip and exited 0. */
  finished: number;
  /** Killed by the soak halfway, as a publisher that vanishes. */
  killed: number;
  /** Exited with an error by themselves (their connection was cut): when, and their last words. */
  cut: number;
  cuts: { atMs: number; name: string; why: string }[];
}

export interface PublisherOptions {
  ffmpeg: string;
  clip: string;
  clipSeconds: number;
  /** icecast://source:<key>@host:port */
  target: string;
  slots: number;
  rand: Rand;
  clock: Clock;
}

/** `slots` ffmpeg publishers at a time, each under a new name; every fourth is killed halfway. */
export class PublisherChurn {
  readonly counts: PublisherCounts = { started: 0, finished: 0, killed: 0, cut: 0, cuts: [] };
  readonly #o: PublisherOptions;
  readonly #live = new Set<ReturnType<typeof spawnTracked>>();
  #running = true;
  readonly #loops: Promise<void>[];

  constructor(o: PublisherOptions) {
    this.#o = o;
    this.#loops = Array.from({ length: o.slots }, () => this.#loop());
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const child of this.#live) child.kill('SIGKILL');
    await Promise.all(this.#loops);
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      await this.#publishOnce(`pub${++this.counts.started}`, this.counts.started % 4 === 0);
      await sleep(this.#o.rand(500, 2000));
    }
  }

  async #publishOnce(name: string, vanish: boolean): Promise<void> {
    const { ffmpeg, clip, clipSeconds, target, rand } = this.#o;
    const child = spawnTracked(ffmpeg, [
      '-nostdin', '-hide_banner', '-loglevel', 'error', '-re', '-i', clip,
      '-map', '0', '-c', 'copy', '-content_type', 'video/webm', '-f', 'webm', `${target}/live/${name}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#live.add(child);
    const tail = tailOutput(child, 500);
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    // A vanishing publisher is killed halfway; any other gets three times its clip's length.
    const killAfter = vanish ? rand(0.3, 0.7) * clipSeconds * 1000 : 3 * clipSeconds * 1000;
    const killer = setTimeout(() => isRunning(child) && child.kill('SIGKILL'), killAfter);
    const code = await exited;
    clearTimeout(killer);
    this.#live.delete(child);
    if (!this.#running) return;
    if (code === 0) this.counts.finished++;
    else if (vanish && child.signalCode === 'SIGKILL') this.counts.killed++;
    else {
      this.counts.cut++;
      const why = tail().trim().split('\n').pop() || `exit ${code}`;
      if (this.counts.cuts.length < 50) this.counts.cuts.push({ atMs: this.#o.clock(), name, why });
    }
  }
}
