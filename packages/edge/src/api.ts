import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError, type ApiQuery, type RequestHead } from '@mkvcast/shared';

/** The Control API's path prefix; /metrics sits beside it. */
export const API_PREFIX = '/api/v1/';
export const METRICS_PATH = '/metrics';

const READ = 'GET, HEAD';

/** A request for the Control API or /metrics; `preflight`: a browser's CORS OPTIONS request. */
export type ApiRequest = { preflight: true } | { preflight: false; query: ApiQuery };

/** Whether a path belongs to the Control API or /metrics (never to a player's slot). */
export function isApiPath(path: string): boolean {
  return path === METRICS_PATH || path.startsWith(API_PREFIX) || path === API_PREFIX.slice(0, -1);
}

/** Headers a browser's preflight needs before it sends Authorization or DELETE (Fetch standard, CORS protocol). */
export const PREFLIGHT_HEADERS = {
  'Access-Control-Allow-Methods': 'GET, HEAD, POST, DELETE',
  'Access-Control-Allow-Headers': 'Authorization',
  'Access-Control-Max-Age': '600',
};

function allow(method: string, allowed: string): void {
  if (!allowed.split(', ').includes(method)) {
    throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', `use ${allowed.replace(/, (?=[^,]*$)/, ' or ')} here`, { Allow: allowed });
  }
}

/** What an API request asks for; throws the HttpError that answers it. */
export function apiRequest(head: RequestHead, token: string | null | undefined): ApiRequest {
  const { method, path } = head;
  if (method === 'OPTIONS') return { preflight: true };
  authorize(head, token);
  if (path === METRICS_PATH) {
    allow(method, READ);
    return { preflight: false, query: { kind: 'metrics' } };
  }
  const [resource, name, ...more] = path.slice(API_PREFIX.length).split('/');
  if (more.length > 0 || name === '') throw notFound(path);
  switch (resource) {
    case 'streams':
      if (name === undefined) {
        allow(method, READ);
        return { preflight: false, query: { kind: 'streams' } };
      }
      allow(method, 'GET, HEAD, DELETE');
      return { preflight: false, query: method === 'DELETE' ? { kind: 'cut-stream', name } : { kind: 'stream', name } };
    case 'clients':
      if (name === undefined) {
        allow(method, READ);
        return { preflight: false, query: { kind: 'clients' } };
      }
      allow(method, 'DELETE');
      return { preflight: false, query: { kind: 'kick-client', id: name } };
    case 'edges':
    case 'server':
      if (name !== undefined) throw notFound(path);
      allow(method, READ);
      return { preflight: false, query: { kind: resource } };
    case 'reload':
      if (name !== undefined) throw notFound(path);
      allow(method, 'POST');
      return { preflight: false, query: { kind: 'reload' } };
    default:
      throw notFound(path);
  }
}

function notFound(path: string): HttpError {
  return new HttpError('MKV_ERR_NOT_FOUND', `no such API path: ${path} (see ${API_PREFIX}streams, clients, edges, server, reload)`);
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * `Authorization: Bearer <token>` (RFC 6750 §2.1), when a token is set. The
 * comparison takes the same time whatever the guess: both sides are hashed
 * to equal lengths first, then compared in constant time.
 */
function authorize(head: RequestHead, token: string | null | undefined): void {
  if (!token) return;
  const given = /^Bearer\s+(\S+)\s*$/i.exec(head.headers.get('authorization') ?? '')?.[1];
  if (given === undefined) {
    throw new HttpError('MKV_ERR_UNAUTHORIZED', 'the Control API needs a bearer token', { 'WWW-Authenticate': 'Bearer realm="mkvcast"' });
  }
  if (!timingSafeEqual(digest(given), digest(token))) {
    throw new HttpError('MKV_ERR_UNAUTHORIZED', 'wrong bearer token', { 'WWW-Authenticate': 'Bearer realm="mkvcast", error="invalid_token"' });
  }
}
