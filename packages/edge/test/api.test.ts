import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HttpError, parseHead } from '@mkvcast/shared';
import { apiRequest, isApiPath } from '../src/api.js';

const head = (method: string, path: string, headers: Record<string, string> = {}) =>
  parseHead([`${method} ${path} HTTP/1.1`, 'Host: x', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n'));

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    return `${err.status} ${err.code}`;
  }
  return 'no error';
}

test('API paths and /metrics are told apart from players, publishers and the status page', () => {
  for (const p of ['/api/v1/streams', '/api/v1/clients/1-2', '/api/v1', '/metrics']) assert.ok(isApiPath(p), p);
  for (const p of ['/live/x', '/', '/stats', '/api', '/metricsx', '/live/api']) assert.ok(!isApiPath(p), p);
});

test('each route and method maps to one query', () => {
  const q = (method: string, path: string) => apiRequest(head(method, path), null);
  assert.deepEqual(q('GET', '/api/v1/streams'), { preflight: false, query: { kind: 'streams' } });
  assert.deepEqual(q('GET', '/api/v1/streams/cam'), { preflight: false, query: { kind: 'stream', name: 'cam' } });
  assert.deepEqual(q('DELETE', '/api/v1/streams/cam'), { preflight: false, query: { kind: 'cut-stream', name: 'cam' } });
  assert.deepEqual(q('GET', '/api/v1/clients'), { preflight: false, query: { kind: 'clients' } });
  assert.deepEqual(q('DELETE', '/api/v1/clients/2-7'), { preflight: false, query: { kind: 'kick-client', id: '2-7' } });
  assert.deepEqual(q('HEAD', '/api/v1/edges'), { preflight: false, query: { kind: 'edges' } });
  assert.deepEqual(q('GET', '/api/v1/server'), { preflight: false, query: { kind: 'server' } });
  assert.deepEqual(q('POST', '/api/v1/reload'), { preflight: false, query: { kind: 'reload' } });
  assert.deepEqual(q('GET', '/metrics'), { preflight: false, query: { kind: 'metrics' } });
  assert.deepEqual(q('OPTIONS', '/api/v1/clients'), { preflight: true });
  assert.equal(code(() => q('POST', '/api/v1/streams')), '405 MKV_ERR_METHOD_NOT_ALLOWED');
  assert.equal(code(() => q('GET', '/api/v1/clients/2-7')), '405 MKV_ERR_METHOD_NOT_ALLOWED');
  assert.equal(code(() => q('GET', '/api/v1/reload')), '405 MKV_ERR_METHOD_NOT_ALLOWED');
  assert.equal(code(() => q('GET', '/api/v1/streams/a/b')), '404 MKV_ERR_NOT_FOUND');
  assert.equal(code(() => q('GET', '/api/v1/streams/')), '404 MKV_ERR_NOT_FOUND');
  assert.equal(code(() => q('GET', '/api/v1/what')), '404 MKV_ERR_NOT_FOUND');
});

test('with a token: none, a wrong one, or Basic auth is 401 with WWW-Authenticate; the right one passes', () => {
  const token = 's3cret';
  const q = (headers: Record<string, string>) => apiRequest(head('GET', '/api/v1/streams', headers), token);
  for (const headers of [{} as Record<string, string>, { Authorization: 'Bearer s3cre' }, { Authorization: 'Bearer s3cret2' }, { Authorization: 'Basic czNjcmV0' }]) {
    try {
      q(headers);
      assert.fail(`passed with ${JSON.stringify(headers)}`);
    } catch (err) {
      assert.ok(err instanceof HttpError && err.status === 401 && err.code === 'MKV_ERR_UNAUTHORIZED', String(err));
      assert.match(err.headers['WWW-Authenticate']!, /^Bearer realm="mkvcast"/);
    }
  }
  assert.deepEqual(q({ Authorization: 'Bearer s3cret' }), { preflight: false, query: { kind: 'streams' } });
  assert.deepEqual(q({ Authorization: 'bearer s3cret' }), { preflight: false, query: { kind: 'streams' } }, 'the scheme is case-insensitive (RFC 9110 §11.1)');
  // A browser's preflight carries no credentials (Fetch standard): it is answered without them.
  assert.deepEqual(apiRequest(head('OPTIONS', '/metrics'), token), { preflight: true });
});
