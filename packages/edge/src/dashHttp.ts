/**
 * HTTP answers for DASH: the manifest, the init segment, media segments, and
 * the dash.js player page. Segments are immutable (the same `t` gives the
 * same bytes on every edge), so caches may keep them for the window; the
 * manifest changes every segment, so it may be cached for at most half of one.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { HttpError, REASON, type DashResource, type RequestHead } from '@mkvcast/shared';
import type { DashStore } from './dashStore.js';
import { manifest, timingOf } from './dashMpd.js';
import { etagOf } from './dashHeader.js';

/** What a not-yet-available resource may be cached for: a player asks again soon. */
const NOT_YET = { 'Cache-Control': 'max-age=1' };

/** A 404 for a DASH path, with the short caching the contract gives every DASH 404. */
export function dashNotFound(message: string): HttpError {
  return new HttpError('MKV_ERR_SEGMENT_NOT_FOUND', message, NOT_YET);
}

interface Body {
  body: Buffer;
  type: string;
  cacheControl: string;
  etag?: string;
}

/** The answer to a GET or HEAD of `resource`; throws the HttpError (404) when it is not (yet) there. */
export function dashAnswer(store: DashStore, name: string, resource: DashResource, head: RequestHead, edgeId: number, now = Date.now()): Buffer {
  return respond(dashBody(store, name, resource, now), head, { 'X-Mkvcast-Edge': String(edgeId) });
}

function dashBody(store: DashStore, name: string, resource: DashResource, now: number): Body {
  const segments = store.segments();
  if (segments.length === 0) throw dashNotFound(`stream '${name}' has no complete segment yet`);
  // Half the newest segment, in whole seconds (RFC 9111 §5.2.2.1 delta-seconds): never longer than one manifest lives.
  const shortAge = Math.floor(timingOf(store, segments).newestMs / 2000);
  switch (resource.kind) {
    case 'manifest':
      return { body: Buffer.from(manifest(store, segments, now)), type: 'application/dash+xml', cacheControl: `public, max-age=${shortAge}` };
    case 'init':
      return { body: store.header.init, type: store.header.mimeType, cacheControl: `public, max-age=${shortAge}`, etag: store.header.initEtag };
    case 'segment': {
      const segment = store.segment(resource.t);
      if (!segment) {
        const newest = segments[segments.length - 1]!;
        const why = resource.t > newest.t ? 'not available yet' : 'not in the window';
        throw dashNotFound(`stream '${name}': no segment at ${resource.t} (${why})`);
      }
      const window = Math.max(1, Math.ceil(store.maxAgeMs / 1000));
      return { body: segment.bytes, type: store.header.mimeType, cacheControl: `public, max-age=${window}, immutable`, etag: segment.etag };
    }
  }
}

/** If-None-Match (RFC 9110 §13.1.2): weak comparison, `*` matches any. */
function notModified(head: RequestHead, etag: string | undefined): boolean {
  const asked = head.headers.get('if-none-match');
  if (!asked || !etag) return false;
  return asked.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

function respond({ body, type, cacheControl, etag }: Body, head: RequestHead, extra: Record<string, string>): Buffer {
  const unchanged = notModified(head, etag);
  const status = unchanged ? 304 : 200;
  let text =
    `HTTP/1.1 ${status} ${REASON[status]}\r\n` +
    'Server: mkvcast\r\n' +
    `Content-Type: ${type}\r\n` +
    (unchanged ? '' : `Content-Length: ${body.length}\r\n`) +
    `Cache-Control: ${cacheControl}\r\n` +
    (etag ? `ETag: ${etag}\r\n` : '') +
    'Access-Control-Allow-Origin: *\r\n' +
    'Access-Control-Expose-Headers: ETag, X-Mkvcast-Edge\r\n';
  for (const [k, v] of Object.entries(extra)) text += `${k}: ${v}\r\n`;
  text += 'Connection: close\r\n\r\n';
  const headBytes = Buffer.from(text, 'latin1');
  return unchanged || head.method === 'HEAD' ? headBytes : Buffer.concat([headBytes, body]);
}

// ---- the player page ---------------------------------------------------------

const STATIC = new URL('../../static/', import.meta.url);

/** dash.js's minified build, as npm ships it (read on first use: 800 KB the edge holds only if asked). */
let dashJs: Buffer | undefined;
function loadDashJs(): Buffer {
  dashJs ??= readFileSync(createRequire(import.meta.url).resolve('dashjs'));
  return dashJs;
}

let page: Buffer | undefined;
function loadPage(): Buffer {
  page ??= readFileSync(new URL('dash.html', STATIC));
  return page;
}

/** `/player/dash.html` and `/player/dash.all.min.js`; undefined for any other path. */
export function playerAsset(path: string, head: RequestHead): Buffer | undefined {
  let body: Body;
  if (path === '/player/dash.html') body = { body: loadPage(), type: 'text/html; charset=utf-8', cacheControl: 'no-cache' };
  else if (path === '/player/dash.all.min.js') {
    const js = loadDashJs();
    body = { body: js, type: 'text/javascript; charset=utf-8', cacheControl: 'public, max-age=3600', etag: jsEtag(js) };
  } else return undefined;
  return respond(body, head, {});
}

let jsTag: string | undefined;
function jsEtag(js: Buffer): string {
  jsTag ??= etagOf(js);
  return jsTag;
}
