// DASH clients for the multi-host test (tier-netns.test.ts), run as a process of its own on the
// client host: each fetches the manifest, then every listed segment it has not fetched yet, in
// order, and again at the manifest's minimumUpdatePeriod, as a live DASH player does. A few
// players of the endless stream ride along. Bounded by client count and time; prints one JSON
// summary on stdout.
//
//   node helpers/dashLoad.js '{"base":"http://10.77.0.31:8080/live/x","clients":300,"seconds":40,"streams":2}'
import http from 'node:http';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LoadOptions {
  /** The stream's URL: its manifest is `${base}/manifest.mpd`. */
  base: string;
  clients: number;
  seconds: number;
  /** Players of the endless stream `${base}` (through the same cache, which must not cache it). */
  streams: number;
}

export interface ClientSummary {
  segments: number;
  firstT: number | null;
  lastT: number | null;
  /** Wall-clock ms of its last segment. */
  lastAt: number;
  /** Where the t sequence broke: "expected t, got t". */
  breaks: string[];
  errors: number;
}

export interface LoadSummary {
  clients: ClientSummary[];
  manifestRequests: number;
  segmentRequests: number;
  /** Segments asked for and answered 404 (then asked again). */
  notFound: number;
  segmentBytes: number;
  /** Segments whose bytes differed between two fetches of the same t. */
  differing: string[];
  /** Distinct segment t fetched. */
  distinct: number;
  /** Per player of the endless stream: bytes, how its connection ended, the longest wait between two reads, ms. */
  streams: Array<{ status: number; bytes: number; end: string; longestGapMs: number }>;
  /** Wall-clock ms (Date.now()) at the start and end of the run. */
  startedAt: number;
  endedAt: number;
}

interface Listed {
  t: number;
  d: number;
}

const MAX_CLIENTS = 2000;
const MAX_SECONDS = 120;
const REQUEST_TIMEOUT_MS = 5000;
/** A segment answered 404 (listed by another edge a moment earlier) is asked again this many times. */
const SEGMENT_TRIES = 20;

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function get(url: string): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.once('error', reject);
  });
}

/** The SegmentTimeline's segments (ISO/IEC 23009-1 §5.3.9.6: t optional after the first, r repeats). */
export function parseTimeline(mpd: string): { segments: Listed[]; updateMs: number } {
  const segments: Listed[] = [];
  let next = 0;
  for (const m of mpd.matchAll(/<S\s([^>]*)\/>/g)) {
    const attrs = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((a) => [a[1]!, Number(a[2])]));
    let t = attrs.t ?? next;
    const d = attrs.d!;
    for (let i = 0; i <= (attrs.r ?? 0); i++) {
      segments.push({ t, d });
      t += d;
    }
    next = t;
  }
  const update = /minimumUpdatePeriod="PT([\d.]+)S"/.exec(mpd);
  return { segments, updateMs: update ? Number(update[1]) * 1000 : 2000 };
}

export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const clients = Math.min(o.clients, MAX_CLIENTS);
  const deadline = Date.now() + Math.min(o.seconds, MAX_SECONDS) * 1000;
  const summary: LoadSummary = {
    clients: [], manifestRequests: 0, segmentRequests: 0, notFound: 0, segmentBytes: 0, differing: [], distinct: 0, streams: [],
    startedAt: Date.now(), endedAt: 0,
  };
  /** The hash of each t's bytes as first fetched: bounded by the run's length in segments. */
  const hashes = new Map<number, string>();

  async function segment(t: number): Promise<boolean> {
    for (let tries = 0; tries < SEGMENT_TRIES && Date.now() < deadline; tries++) {
      summary.segmentRequests++;
      const res = await get(`${o.base}/${t}.webm`);
      if (res.status === 404) {
        summary.notFound++;
        await sleep(250);
        continue;
      }
      if (res.status !== 200) throw new Error(`segment ${t}: HTTP ${res.status}`);
      summary.segmentBytes += res.body.length;
      const hash = createHash('sha256').update(res.body).digest('hex');
      const known = hashes.get(t);
      if (known === undefined) hashes.set(t, hash);
      else if (known !== hash && summary.differing.length < 20) summary.differing.push(`t=${t}`);
      return true;
    }
    return false;
  }

  async function client(index: number): Promise<ClientSummary> {
    const me: ClientSummary = { segments: 0, firstT: null, lastT: null, lastAt: 0, breaks: [], errors: 0 };
    await sleep((index * 2000) / clients); // arrivals spread over 2 s
    let next: number | undefined;
    let got = false;
    while (Date.now() < deadline) {
      let updateMs = 1000;
      try {
        if (!got) got = (await get(`${o.base}/init.webm`)).status === 200;
        summary.manifestRequests++;
        const res = await get(`${o.base}/manifest.mpd`);
        if (res.status === 200) {
          const { segments, updateMs: period } = parseTimeline(res.body.toString());
          updateMs = period;
          // A live player starts a few segments behind the newest.
          next ??= segments[Math.max(0, segments.length - 3)]?.t;
          for (const s of segments) {
            if (next === undefined || s.t < next || Date.now() >= deadline) continue;
            if (s.t !== next && me.segments > 0 && me.breaks.length < 5) me.breaks.push(`expected t=${next}, got t=${s.t}`);
            if (!(await segment(s.t))) break;
            me.segments++;
            me.firstT ??= s.t;
            me.lastT = s.t;
            me.lastAt = Date.now();
            next = s.t + s.d;
          }
        } else me.errors++;
      } catch {
        me.errors++;
      }
      await sleep(Math.max(100, Math.min(updateMs, deadline - Date.now())));
    }
    return me;
  }

  async function stream(): Promise<LoadSummary['streams'][number]> {
    return new Promise((resolve) => {
      const result = { status: 0, bytes: 0, end: 'time', longestGapMs: 0 };
      let last = Date.now();
      let done = false;
      const req = http.get(o.base, { agent: false }, (res) => {
        result.status = res.statusCode ?? 0;
        res.on('data', (c: Buffer) => {
          const now = Date.now();
          result.longestGapMs = Math.max(result.longestGapMs, now - last);
          last = now;
          result.bytes += c.length;
        });
        res.once('end', () => finish('ended'));
        res.once('error', (err) => finish(`error: ${err.message}`));
      });
      req.once('error', (err) => finish(`error: ${err.message}`));
      const timer = setTimeout(() => finish('time'), deadline - Date.now());
      function finish(end: string): void {
        if (done) return;
        done = true;
        clearTimeout(timer);
        result.end = end;
        req.destroy();
        resolve(result);
      }
    });
  }

  const players = Array.from({ length: Math.min(o.streams, 16) }, () => stream());
  summary.clients = await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  summary.streams = await Promise.all(players);
  summary.distinct = hashes.size;
  summary.endedAt = Date.now();
  agent.destroy();
  return summary;
}

if (process.argv[2]) {
  const options = JSON.parse(process.argv[2]) as LoadOptions;
  process.stderr.write('load: started\n');
  runLoad(options).then(
    (summary) => process.stdout.write(`${JSON.stringify(summary)}\n`),
    (err: Error) => {
      process.stderr.write(`load: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    },
  );
}
