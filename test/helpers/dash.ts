// DASH helpers for the dash-* tests: the manifest read as XML, its segment list, and waits on it.
import assert from 'node:assert/strict';
import { request, waitFor, type Reply } from './live.js';
import type { RunningMaster } from './server.js';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

/**
 * A strict reader for the XML an MPD is: a declaration, elements and attributes, no text, no
 * entities but numeric ones. None of the project's dependencies parses XML, and this subset is
 * all a manifest of ours may hold: anything else (an unclosed or crossed tag, an unquoted or
 * repeated attribute, stray text) throws.
 */
export function parseXml(text: string): XmlElement {
  let pos = 0;
  const skipSpace = (): void => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const fail = (why: string): never => {
    throw new Error(`not well-formed XML at ${pos}: ${why}: ${JSON.stringify(text.slice(pos, pos + 40))}`);
  };
  if (text.startsWith('<?xml')) {
    const end = text.indexOf('?>');
    if (end < 0) fail('unterminated declaration');
    pos = end + 2;
  }
  const element = (): XmlElement => {
    skipSpace();
    const open = /^<([A-Za-z_][\w.:-]*)/.exec(text.slice(pos));
    if (!open) return fail('expected an element');
    pos += open[0].length;
    const el: XmlElement = { name: open[1]!, attrs: {}, children: [] };
    for (;;) {
      skipSpace();
      if (text.startsWith('/>', pos)) {
        pos += 2;
        return el;
      }
      if (text[pos] === '>') {
        pos++;
        break;
      }
      const attr = /^([A-Za-z_][\w.:-]*)="([^"<&]*(?:&#\d+;[^"<&]*)*)"/.exec(text.slice(pos));
      if (!attr) return fail('expected an attribute');
      if (attr[1]! in el.attrs) fail(`attribute ${attr[1]} repeated`);
      el.attrs[attr[1]!] = attr[2]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
      pos += attr[0].length;
    }
    for (;;) {
      skipSpace();
      if (text.startsWith('</', pos)) {
        const close = `</${el.name}>`;
        if (!text.startsWith(close, pos)) fail(`expected ${close}`);
        pos += close.length;
        return el;
      }
      el.children.push(element());
    }
  };
  const root = element();
  skipSpace();
  if (pos !== text.length) fail('text after the root element');
  return root;
}

/** The first descendant named `name` (depth first). */
export function find(el: XmlElement, name: string): XmlElement | undefined {
  for (const child of el.children) {
    if (child.name === name) return child;
    const deeper = find(child, name);
    if (deeper) return deeper;
  }
  return undefined;
}

export function must(el: XmlElement, name: string): XmlElement {
  const found = find(el, name);
  assert.ok(found, `<${name}> in <${el.name}>`);
  return found;
}

/** One listed segment: start and duration, in the timescale's ticks. */
export interface Listed {
  t: number;
  d: number;
}

/** The SegmentTimeline's segments, `r` repeats unrolled (ISO/IEC 23009-1 §5.3.9.6). */
export function listed(mpd: XmlElement): Listed[] {
  const out: Listed[] = [];
  for (const s of must(mpd, 'SegmentTimeline').children) {
    assert.equal(s.name, 'S');
    const d = Number(s.attrs.d);
    let t = s.attrs.t !== undefined ? Number(s.attrs.t) : out.length ? out[out.length - 1]!.t + out[out.length - 1]!.d : NaN;
    for (let i = 0; i <= Number(s.attrs.r ?? 0); i++, t += d) out.push({ t, d });
  }
  return out;
}

export interface Manifest {
  reply: Reply;
  mpd: XmlElement;
  segments: Listed[];
}

export async function getManifest(master: RunningMaster, name: string): Promise<Manifest> {
  const reply = await request(master.url(`/live/${name}/manifest.mpd`));
  assert.equal(reply.status, 200, `manifest of ${name}: ${reply.status} ${reply.body.toString()}`);
  const mpd = parseXml(reply.body.toString());
  return { reply, mpd, segments: listed(mpd) };
}

/** Waits until a manifest (from whichever edge answers) lists at least `count` segments. */
export async function waitForSegments(master: RunningMaster, name: string, count: number, timeoutMs = 30_000): Promise<Manifest> {
  return waitFor(
    `${name}'s manifest to list ${count} segments`,
    async () => {
      const reply = await request(master.url(`/live/${name}/manifest.mpd`));
      if (reply.status !== 200) return undefined;
      const mpd = parseXml(reply.body.toString());
      const segments = listed(mpd);
      return segments.length >= count ? { reply, mpd, segments } : undefined;
    },
    timeoutMs,
    200,
  );
}

/** xs:duration `PT…S` (the only form the server writes) in ms. */
export function durationMs(value: string | undefined): number {
  const match = /^PT(\d+(?:\.\d+)?)S$/.exec(value ?? '');
  assert.ok(match, `an xs:duration PT…S: ${value}`);
  return Number(match[1]) * 1000;
}

/** `max-age` of a Cache-Control header, in seconds. */
export function maxAge(cacheControl: string | string[] | undefined): number {
  const match = /(?:^|,)\s*max-age=(\d+)/.exec(String(cacheControl ?? ''));
  assert.ok(match, `max-age in Cache-Control: ${cacheControl}`);
  return Number(match[1]);
}

/**
 * Replies from `edges` different edges (by `X-Mkvcast-Edge`) to `get`. The kernel gives each
 * connection to whichever edge accepts first, and a just-restarted edge may not listen yet:
 * ask 4 at a time until every edge answered, bounded by 200 rounds and `timeoutMs`.
 */
export async function fromEveryEdge(get: () => Promise<Reply>, edges: number, timeoutMs = 20_000): Promise<Map<string, Reply>> {
  const byEdge = new Map<string, Reply>();
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; round < 200 && byEdge.size < edges && Date.now() < deadline; round++) {
    const replies = await Promise.all(Array.from({ length: 4 }, get));
    for (const r of replies) byEdge.set(String(r.headers['x-mkvcast-edge']), r);
  }
  assert.equal(byEdge.size, edges, `answers from ${edges} edges: got ${[...byEdge.keys()].join(', ')}`);
  return byEdge;
}
