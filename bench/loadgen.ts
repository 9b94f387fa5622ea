// A load generator process: N players join a live stream over raw loopback TCP and count what
// they receive. It keeps no data, only lengths, so one process can take gigabits per second.
//
//   node build/bench/loadgen.js --url http://127.0.0.1:PORT/live/x --players N
//        [--join-ms 1000] [--duration-s 10] [--rate-bps 500000] [--sampled N [--next-path P]]
//        [--streams N]   (player i asks for the URL's path with (i mod N) + 1 appended: /live/x1 …)
//
// Timeline: players connect spread evenly over the join window; the measuring window follows
// it for duration-s. Bytes that arrive during the join window (each player's start burst) are
// counted apart from the window's, so the window shows the steady, real-time rate. Prints one
// JSON line on stdout; progress markers ("loadgen: window start|end") go to stderr.
//
// --sampled N (the latency bench): N players spread over the crowd search their bytes for the
// publisher's frame markers (marker.ts) and note when each arrives; the others only count bytes,
// as searching every player's bytes would make this process what players wait on. With
// --next-path, every other sampled player asks for that path (e.g. ?start=next) instead.
import net from 'node:net';
import { parseArgs } from 'node:util';
import { MARKER_BYTES, MARKER_MAGIC } from './marker.js';
import { percentile } from './merge.js';

const MAX_PLAYERS = 20_000;
const MAX_DURATION_S = 600;
const MAX_JOIN_MS = 60_000;
/** A response header larger than this is an error (ours are a few hundred bytes). */
const MAX_HEADER_BYTES = 16 * 1024;
/** Past the planned end, give up and report whatever was measured. */
const HARD_TIMEOUT_GRACE_MS = 15_000;
/** Players within this fraction of the expected byte count are keeping up (real time). */
const KEPT_UP_FRACTION = 0.9;
/** A player that received nothing in this last stretch of the window is no longer receiving. */
const STILL_RECEIVING_MS = 1000;
/** Markers a sampled player notes, at most (25 fps for 10 minutes). */
const MAX_ARRIVALS = 15_000;

interface Options {
  host: string;
  port: number;
  hostHeader: string;
  path: string;
  players: number;
  joinMs: number;
  durationS: number;
  rateBps: number | null;
  sampled: number;
  nextPath: string | null;
  /** Player i asks for the path with (i mod streams) + 1 appended; 1: the path itself. */
  streams: number;
}

class UsageError extends Error {}

function numberOption(value: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in [${min}, ${max}]`);
  return n;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      players: { type: 'string' },
      'join-ms': { type: 'string' },
      'duration-s': { type: 'string' },
      'rate-bps': { type: 'string' },
      sampled: { type: 'string' },
      'next-path': { type: 'string' },
      streams: { type: 'string' },
    },
  });
  if (values.url === undefined) throw new UsageError('--url is required');
  const url = new URL(values.url);
  if (url.protocol !== 'http:') throw new UsageError('only http: URLs');
  // Loopback only: this tool opens thousands of connections and must not be aimed elsewhere.
  const hosts: Record<string, string> = { '127.0.0.1': '127.0.0.1', '[::1]': '::1', localhost: '127.0.0.1' };
  const host = hosts[url.hostname];
  if (host === undefined) throw new UsageError(`refusing non-loopback host ${url.hostname}`);
  const rate = numberOption(values['rate-bps'], 'rate-bps', 0, 0, 1e10);
  return {
    host,
    port: url.port === '' ? 80 : Number(url.port),
    hostHeader: url.host,
    path: `${url.pathname}${url.search}`,
    players: Math.floor(numberOption(values.players, 'players', 1, 1, MAX_PLAYERS)),
    joinMs: numberOption(values['join-ms'], 'join-ms', 1000, 0, MAX_JOIN_MS),
    durationS: numberOption(values['duration-s'], 'duration-s', 10, 0.1, MAX_DURATION_S),
    rateBps: rate > 0 ? rate : null,
    sampled: Math.floor(numberOption(values.sampled, 'sampled', 0, 0, MAX_PLAYERS)),
    nextPath: values['next-path'] ?? null,
    streams: Math.floor(numberOption(values.streams, 'streams', 1, 1, MAX_PLAYERS)),
  };
}

/** What a sampled player saw of the publisher's markers. Times are wall ms (timeOrigin + now). */
export interface MarkerPlayer {
  /** Whether it asked for --next-path. */
  next: boolean;
  /** When it began to connect. */
  startMs: number;
  /** The first marker it received, and when: where it joined the stream. */
  firstSeq: number | null;
  firstMs: number | null;
  /** Markers received in the measuring window: seq, ms, seq, ms, … */
  arrivals: number[];
}

/** The JSON line printed on stdout. */
export interface LoadReport {
  requested: number;
  launched: number;
  connected: number;
  ok200: number;
  status: Record<string, number>;
  /** Players whose connection failed (refused, reset, bad response head). */
  errors: number;
  errorCodes: Record<string, number>;
  /** Players the server closed before the end. */
  closedEarly: number;
  /** Players that never received a body byte. */
  noBody: number;
  bytesTotal: number;
  /** Body bytes received during the join window (the start bursts). */
  burstBytes: number;
  /** Body bytes received during the measuring window. */
  windowBytes: number;
  perPlayerBytes: { min: number; p50: number };
  perPlayerWindowBytes: { min: number; p50: number };
  rateBps: number | null;
  /** Players that received at least 90 % of rate × window in the window; null without a rate. */
  keptUp: number | null;
  /**
   * Players still receiving as the window ended (a byte in its last second, not closed) that got
   * at least 90 % of the median player's bytes per second in the window.
   */
  keptUpLive: number;
  /** Up to 10 players that did not keep up, for a diagnosis. */
  laggards: { windowBytes: number; lastByteAgoMs: number; closedEarly: boolean; index: number; bytesPerS: number; medianBytesPerS: number }[];
  /** --sampled players' markers; empty without --sampled. */
  markers: MarkerPlayer[];
  /** From the start of connect to the first body byte. */
  ttfbMs: { p50: number | null; p99: number | null; max: number | null };
  /** Every player's TTFB (0.1 ms steps, ascending), so that several load generators' can be merged. */
  ttfbSamplesMs: number[];
  /**
   * Every connected player's connect time (0.1 ms steps, ascending): the handshake, done by the
   * kernel. Past 1 s, SYNs were dropped at a full listen queue and retried.
   */
  connectSamplesMs: number[];
  /**
   * This process's CPU from the first connect until every player had its first byte (or the
   * window ended), over that time: near 1, it was the load generator that kept players waiting.
   */
  crowdCpu: { cpuS: number; wallS: number };
  windowS: number;
  /** CPU time of this process, whole run and measuring window. */
  cpu: { userS: number; systemS: number };
  cpuWindow: { userS: number; systemS: number };
  /** Body bits per second in the measuring window, in Gbit/s. */
  gbps: number;
  timedOut: boolean;
}

const enum Phase { Join, Window, Done }

/** Every socket reads into this one buffer: the callback runs synchronously and keeps nothing. */
const readBuffer = new Uint8Array(256 * 1024);
const HEADER_END = Buffer.from('\r\n\r\n');

class Player {
  socket: net.Socket | null = null;
  startMs = 0;
  status = 0;
  /** Header bytes until the blank line is seen, then null. */
  head: Buffer | null = Buffer.alloc(0);
  ttfbMs: number | null = null;
  connectMs: number | null = null;
  burstBytes = 0;
  windowBytes = 0;
  connected = false;
  failed = false;
  closedEarly = false;
  lastByteMs = 0;
  probe: Probe | null = null;
}

/** A sampled player's marker search: the last bytes of its previous read, for markers cut in two. */
class Probe {
  readonly tail = Buffer.alloc(MARKER_BYTES - 1);
  tailLength = 0;
  readonly out: MarkerPlayer;
  constructor(next: boolean) {
    this.out = { next, startMs: performance.timeOrigin + performance.now(), firstSeq: null, firstMs: null, arrivals: [] };
  }

  /** Notes every marker in `body`, received now; `inWindow` says whether to keep its arrival. */
  scan(body: Buffer, inWindow: boolean): void {
    const nowMs = performance.timeOrigin + performance.now();
    if (this.tailLength > 0) {
      // Only a marker that starts in the tail: one inside the body is found below.
      const seam = Buffer.concat([this.tail.subarray(0, this.tailLength), body.subarray(0, MARKER_BYTES - 1)]);
      const at = seam.indexOf(MARKER_MAGIC);
      if (at >= 0 && at < this.tailLength && at + MARKER_BYTES <= seam.length) this.#found(seam.readUInt32BE(at + MARKER_MAGIC.length), nowMs, inWindow);
    }
    for (let at = body.indexOf(MARKER_MAGIC); at >= 0 && at + MARKER_BYTES <= body.length; at = body.indexOf(MARKER_MAGIC, at + MARKER_BYTES)) {
      this.#found(body.readUInt32BE(at + MARKER_MAGIC.length), nowMs, inWindow);
    }
    const k = MARKER_BYTES - 1;
    const last = body.length >= k ? body.subarray(body.length - k) : Buffer.concat([this.tail.subarray(0, this.tailLength), body]).subarray(-k);
    last.copy(this.tail);
    this.tailLength = last.length;
  }

  #found(seq: number, nowMs: number, inWindow: boolean): void {
    const o = this.out;
    if (o.firstSeq === null) {
      o.firstSeq = seq;
      o.firstMs = nowMs;
    }
    if (inWindow && o.arrivals.length < 2 * MAX_ARRIVALS) o.arrivals.push(seq, Math.round(nowMs * 100) / 100);
  }
}

class LoadGen {
  readonly #o: Options;
  readonly #players: Player[] = [];
  /** One request per stream: player i sends the (i mod streams)-th. */
  readonly #requests: Buffer[];
  readonly #nextRequest: Buffer | null;
  readonly #errorCodes: Record<string, number> = {};
  #phase = Phase.Join;
  #startMs = 0;
  #startCpu: NodeJS.CpuUsage | undefined;
  #windowStartMs = 0;
  #windowEndMs = 0;
  #windowCpu: NodeJS.CpuUsage | null = null;
  #launched = 0;
  #firstBytes = 0;
  #crowdCpu: { cpuS: number; wallS: number } | null = null;

  constructor(o: Options) {
    this.#o = o;
    const request = (path: string): Buffer =>
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${o.hostHeader}\r\nUser-Agent: mkvcast-loadgen\r\n\r\n`, 'latin1');
    this.#requests = o.streams === 1 ? [request(o.path)] : Array.from({ length: o.streams }, (_, k) => request(`${o.path}${k + 1}`));
    this.#nextRequest = o.nextPath === null ? null : request(o.nextPath);
  }

  run(): Promise<LoadReport> {
    return new Promise((resolve) => {
      this.#startMs = performance.now();
      this.#startCpu = process.cpuUsage();
      this.#launchDue();
      setTimeout(() => {
        this.#phase = Phase.Window;
        this.#windowStartMs = performance.now();
        this.#windowCpu = process.cpuUsage();
        process.stderr.write('loadgen: window start\n');
        setTimeout(() => this.#finish(false, resolve), this.#o.durationS * 1000);
      }, this.#o.joinMs);
      const hardMs = this.#o.joinMs + this.#o.durationS * 1000 + HARD_TIMEOUT_GRACE_MS;
      setTimeout(() => this.#finish(true, resolve), hardMs).unref();
    });
  }

  /** Opens every connection whose turn has come, spread evenly over the join window. */
  #launchDue(): void {
    const { players, joinMs } = this.#o;
    const elapsed = performance.now() - this.#startMs;
    const due = joinMs === 0 ? players : Math.min(players, Math.floor((elapsed / joinMs) * players) + 1);
    while (this.#launched < due) this.#launch();
    if (this.#launched < players && this.#phase !== Phase.Done) setTimeout(() => this.#launchDue(), 1);
  }

  #launch(): void {
    const p = new Player();
    this.#players.push(p);
    const index = this.#launched++;
    p.startMs = performance.now();
    let request = this.#requests[index % this.#requests.length]!;
    const { players, sampled } = this.#o;
    // Sampled players spread evenly over the crowd, so that they join early and late.
    if (sampled > 0 && Math.floor(((index + 1) * sampled) / players) > Math.floor((index * sampled) / players)) {
      const k = Math.floor((index * sampled) / players);
      const next = this.#nextRequest !== null && k % 2 === 1;
      p.probe = new Probe(next);
      if (next) request = this.#nextRequest!;
    }
    const socket = net.connect({
      host: this.#o.host,
      port: this.#o.port,
      onread: { buffer: readBuffer, callback: (n, buf) => this.#onBytes(p, buf, n) },
    });
    p.socket = socket;
    socket.setNoDelay(true);
    socket.once('connect', () => {
      p.connected = true;
      p.connectMs = performance.now() - p.startMs;
      socket.write(request);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#phase === Phase.Done || p.failed) return;
      p.failed = true;
      const code = err.code ?? err.message;
      this.#errorCodes[code] = (this.#errorCodes[code] ?? 0) + 1;
    });
    socket.once('close', () => {
      if (this.#phase !== Phase.Done && !p.failed) p.closedEarly = true;
      p.socket = null;
    });
  }

  #onBytes(p: Player, buf: Uint8Array, n: number): boolean {
    let body = n;
    if (p.head !== null) {
      body = this.#readHead(p, buf, n);
      if (body <= 0) return true;
    }
    const now = performance.now();
    p.lastByteMs = now;
    if (p.probe !== null) p.probe.scan(Buffer.from(buf.buffer, buf.byteOffset + n - body, body), this.#phase === Phase.Window);
    if (p.ttfbMs === null) {
      p.ttfbMs = now - p.startMs;
      if (++this.#firstBytes === this.#o.players) this.#crowdCpu = this.#cpuSinceStart();
    }
    // Chunked transfer coding, if any, is counted with the body: a few bytes per chunk.
    if (this.#phase === Phase.Window) p.windowBytes += body;
    else if (this.#phase === Phase.Join) p.burstBytes += body;
    return true;
  }

  /** Collects the response head; returns how many of the n bytes are body (0 while in head). */
  #readHead(p: Player, buf: Uint8Array, n: number): number {
    // Only the head is copied: the first read often brings the whole start burst with it, and
    // copying that for each of thousands of players made this process what players waited on.
    const seen = p.head!.length;
    const chunk = Buffer.from(buf.buffer, buf.byteOffset, Math.min(n, MAX_HEADER_BYTES + HEADER_END.length));
    const head = seen === 0 ? chunk : Buffer.concat([p.head!, chunk]);
    const end = head.indexOf(HEADER_END);
    if (end < 0) {
      p.head = Buffer.from(head);
      if (head.length > MAX_HEADER_BYTES) this.#fail(p, 'HEADER_TOO_LARGE');
      return 0;
    }
    p.head = null;
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head.toString('latin1', 0, Math.min(end, 64)));
    if (m === null) {
      this.#fail(p, 'BAD_STATUS_LINE');
      return 0;
    }
    p.status = Number(m[1]);
    return seen + n - (end + HEADER_END.length);
  }

  #cpuSinceStart(): { cpuS: number; wallS: number } {
    const cpu = process.cpuUsage(this.#startCpu);
    return { cpuS: (cpu.user + cpu.system) / 1e6, wallS: (performance.now() - this.#startMs) / 1000 };
  }

  #fail(p: Player, code: string): void {
    if (p.failed) return;
    p.failed = true;
    this.#errorCodes[code] = (this.#errorCodes[code] ?? 0) + 1;
    p.socket?.destroy();
  }

  #finish(timedOut: boolean, done: (report: LoadReport) => void): void {
    if (this.#phase === Phase.Done) return;
    const now = performance.now();
    if (this.#phase === Phase.Join) this.#windowStartMs = now; // hard timeout inside the join window
    this.#phase = Phase.Done;
    this.#windowEndMs = now;
    const windowCpu = process.cpuUsage(this.#windowCpu ?? undefined);
    this.#crowdCpu ??= this.#cpuSinceStart();
    process.stderr.write('loadgen: window end\n');
    for (const p of this.#players) p.socket?.destroy();
    done(this.#report(timedOut, windowCpu));
  }

  #report(timedOut: boolean, windowCpu: NodeJS.CpuUsage): LoadReport {
    const o = this.#o;
    const players = this.#players;
    const windowS = (this.#windowEndMs - this.#windowStartMs) / 1000;
    const status: Record<string, number> = {};
    let burstBytes = 0;
    let windowBytes = 0;
    for (const p of players) {
      if (p.status !== 0) status[p.status] = (status[p.status] ?? 0) + 1;
      burstBytes += p.burstBytes;
      windowBytes += p.windowBytes;
    }
    // Players never launched (hard timeout) still count as requested, with zero bytes.
    const pad = (values: number[]): number[] => values.concat(new Array<number>(o.players - values.length).fill(0));
    const totals = pad(players.map((p) => p.burstBytes + p.windowBytes)).sort((a, b) => a - b);
    const inWindow = pad(players.map((p) => p.windowBytes)).sort((a, b) => a - b);
    const ttfb = players.flatMap((p) => (p.ttfbMs === null ? [] : [p.ttfbMs])).sort((a, b) => a - b);
    const need = o.rateBps === null ? null : (KEPT_UP_FRACTION * o.rateBps * windowS) / 8;
    // Bytes per second from the window's start, or from the first frame if it came later: a player
    // that asked for --next-path late in the join window waits for a keyframe inside the window.
    const rateOf = (p: Player): number => {
      const firstFrame = p.probe?.out.firstMs == null ? 0 : p.probe.out.firstMs - performance.timeOrigin;
      const from = Math.max(this.#windowStartMs, firstFrame);
      return this.#windowEndMs - from > 0 ? (p.windowBytes * 1000) / (this.#windowEndMs - from) : 0;
    };
    const medianRate = percentile(players.map(rateOf).sort((a, b) => a - b), 0.5) ?? 0;
    const keeps = (p: Player): boolean =>
      !p.closedEarly && !p.failed && p.lastByteMs >= this.#windowEndMs - STILL_RECEIVING_MS && rateOf(p) >= KEPT_UP_FRACTION * medianRate;
    const live = players.filter(keeps).length;
    const laggards = players.flatMap((p, index) => (keeps(p) ? [] : [{
      windowBytes: p.windowBytes, lastByteAgoMs: Math.round(this.#windowEndMs - p.lastByteMs), closedEarly: p.closedEarly, index, bytesPerS: Math.round(rateOf(p)), medianBytesPerS: Math.round(medianRate),
    }])).slice(0, 10);
    const cpu = process.cpuUsage();
    const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
    return {
      requested: o.players,
      launched: this.#launched,
      connected: players.filter((p) => p.connected).length,
      ok200: status[200] ?? 0,
      status,
      errors: players.filter((p) => p.failed).length,
      errorCodes: this.#errorCodes,
      closedEarly: players.filter((p) => p.closedEarly).length,
      noBody: o.players - ttfb.length,
      bytesTotal: burstBytes + windowBytes,
      burstBytes,
      windowBytes,
      perPlayerBytes: { min: totals[0] ?? 0, p50: percentile(totals, 0.5) ?? 0 },
      perPlayerWindowBytes: { min: inWindow[0] ?? 0, p50: percentile(inWindow, 0.5) ?? 0 },
      rateBps: o.rateBps,
      keptUp: need === null ? null : players.filter((p) => p.windowBytes >= need).length,
      keptUpLive: live,
      laggards,
      markers: players.flatMap((p) => (p.probe === null ? [] : [p.probe.out])),
      ttfbMs: { p50: round(percentile(ttfb, 0.5)), p99: round(percentile(ttfb, 0.99)), max: round(ttfb.at(-1) ?? null) },
      ttfbSamplesMs: ttfb.map((x) => Math.round(x * 10) / 10),
      connectSamplesMs: players
        .flatMap((p) => (p.connectMs === null ? [] : [Math.round(p.connectMs * 10) / 10]))
        .sort((a, b) => a - b),
      crowdCpu: this.#crowdCpu!,
      windowS: Math.round(windowS * 1000) / 1000,
      cpu: { userS: cpu.user / 1e6, systemS: cpu.system / 1e6 },
      cpuWindow: { userS: windowCpu.user / 1e6, systemS: windowCpu.system / 1e6 },
      gbps: windowS > 0 ? Math.round(((windowBytes * 8) / windowS / 1e9) * 1e4) / 1e4 : 0,
      timedOut,
    };
  }
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`loadgen: ${(err as Error).message}\n`);
    process.exit(64);
  }
  const report = await new LoadGen(options).run();
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(report.timedOut ? 2 : 0));
}

await main();
