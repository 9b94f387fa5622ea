import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_HEAD_BYTES, RequestHeadReader, parseHead } from '../src/http/request.js';

const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

test('parses method, decoded path, query, version and lower-cased headers', () => {
  const head = parseHead('GET /live/my%20cam.webm?key=abc HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nX-A: 1\r\nx-a: 2');
  assert.equal(head.method, 'GET');
  assert.equal(head.path, '/live/my cam.webm');
  assert.equal(head.query.get('key'), 'abc');
  assert.equal(head.version, '1.1');
  assert.equal(head.headers.get('accept'), 'text/html');
  assert.equal(head.headers.get('x-a'), '1, 2');
});

test('absolute-form targets and HTTP/1.0', () => {
  const head = parseHead('GET http://example.org:8080/live/a HTTP/1.0');
  assert.equal(head.path, '/live/a');
  assert.equal(head.version, '1.0');
});

test('malformed requests are 400s, unknown versions 505', () => {
  assert.equal(code(() => parseHead('GET /live/a')), 'MKV_ERR_BAD_REQUEST');
  assert.equal(code(() => parseHead('GET /live/a HTTP/1.1 extra')), 'MKV_ERR_BAD_REQUEST');
  assert.equal(code(() => parseHead('G(T /live/a HTTP/1.1')), 'MKV_ERR_BAD_REQUEST');
  assert.equal(code(() => parseHead('GET /live/a HTTP/1.1\r\nno colon here')), 'MKV_ERR_BAD_REQUEST');
  assert.equal(code(() => parseHead('GET /live/%zz HTTP/1.1')), 'MKV_ERR_BAD_REQUEST');
  assert.equal(code(() => parseHead('GET /live/a SIP/2.0')), 'MKV_ERR_BAD_REQUEST');
  assert.equal(code(() => parseHead('GET /live/a HTTP/2.0')), 'MKV_ERR_VERSION_NOT_SUPPORTED');
});

test('the reader joins a head split over reads and returns the bytes after it', () => {
  const reader = new RequestHeadReader();
  const text = 'GET /live/a HTTP/1.1\r\nHost: h\r\n\r\nBODY';
  let result;
  for (const ch of text) result ??= reader.push(Buffer.from(ch));
  assert.ok(result);
  assert.equal(result.head.path, '/live/a');
  assert.equal(result.rest.toString(), '');
  const whole = new RequestHeadReader().push(Buffer.from(text));
  assert.equal(whole!.rest.toString(), 'BODY');
});

test('a head that never ends is refused once past the limit', () => {
  const reader = new RequestHeadReader();
  reader.push(Buffer.from('GET / HTTP/1.1\r\n'));
  const line = Buffer.from('X-Pad: ' + 'a'.repeat(1000) + '\r\n');
  let err: string | undefined;
  for (let i = 0; i < 20 && !err; i++) err = code(() => reader.push(line));
  assert.equal(err, 'MKV_ERR_HEADERS_TOO_LARGE');
  assert.ok(MAX_HEAD_BYTES < 20 * line.length);
});

test('an origin-form target starting with "//" is a path, not a host (RFC 9112 §3.2.1)', () => {
  // "//live/a" once parsed as host "live", path "/a"; "//" as a URL without a host (400).
  const bytes = Buffer.from([
    0x47, 0x45, 0x54, 0x20, //                   "GET "
    0x2f, 0x2f, 0x6c, 0x69, 0x76, 0x65, //       "//live"
    0x2f, 0x61, 0x3f, 0x6b, 0x3d, 0x31, 0x20, // "/a?k=1 "
    0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, // "HTTP/1.1"
    0x0d, 0x0a, 0x0d, 0x0a, //                   CRLF, empty line: end of the head
  ]);
  const head = new RequestHeadReader().push(bytes)!.head;
  assert.equal(head.path, '//live/a');
  assert.equal(head.query.get('k'), '1');
  assert.equal(parseHead('GET // HTTP/1.1').path, '//');
  // A backslash counts as a slash in http URLs: "/\host/a" must not name a host either.
  assert.equal(parseHead('GET /\\evil.example/a HTTP/1.1').path, '//evil.example/a');
});

test('a head of exactly MAX_HEAD_BYTES is accepted when its last bytes come in a later read', () => {
  const line = Buffer.from('GET / HTTP/1.1\r\n'); //                 request line, 16 bytes
  const name = Buffer.from('X-Pad: '); //                            field name, colon, space
  const pad = Buffer.alloc(MAX_HEAD_BYTES - line.length - name.length, 0x70); // 'p'… up to the limit
  const head = Buffer.concat([line, name, pad]);
  assert.equal(head.length, MAX_HEAD_BYTES);
  const whole = new RequestHeadReader().push(Buffer.concat([head, Buffer.from([0x0d, 0x0a, 0x0d, 0x0a])]));
  assert.ok(whole, 'in one read it is accepted');
  for (let split = 1; split <= 4; split++) {
    const reader = new RequestHeadReader();
    const end = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a]); // CR LF CR LF: end of the last field, then the empty line
    assert.equal(reader.push(Buffer.concat([head, end.subarray(0, split - 1)])), undefined);
    const result = reader.push(end.subarray(split - 1));
    assert.equal(result?.head.headers.get('x-pad'), pad.toString(), `final ${5 - split} bytes in a second read`);
  }
});
