// The request head that travels with an upload's connection (edge → master → source):
// what arrives is what the edge parsed, through the same serialization as Node's IPC
// ('advanced': v8.serialize), and a head that parseHead could not have made is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserialize, serialize } from 'node:v8';
import { MAX_HEAD_BYTES, handedHead, parseHead, receivedHead, type HandedHead, type RequestHead } from '@mkvcast/shared';

/** Through Node's IPC channel and back, as fork({ serialization: 'advanced' }) carries it. */
const overIpc = (handed: HandedHead): HandedHead => deserialize(serialize(handed)) as HandedHead;

function assertSameHead(got: RequestHead, want: RequestHead): void {
  assert.equal(got.method, want.method);
  assert.equal(got.path, want.path);
  assert.equal(got.version, want.version);
  assert.deepEqual([...got.query], [...want.query]);
  assert.deepEqual(got.headers, want.headers);
  assert.deepEqual(got.fields, want.fields);
}

test('a publish head crosses the hand-off as the edge parsed it: fields in order, repeats, query, size', () => {
  const text =
    'POST http://example.org/live/my%20cam.webm?realtime=1&key=a%2Bb+c&key=second HTTP/1.0\r\n' +
    'Host: 127.0.0.1\r\n' +
    'Authorization: Basic eDpodW50ZXIy\r\n' +
    'X-Mkvcast-Realtime:  yes \r\n' +
    'Transfer-Encoding: gzip\r\n' +
    'transfer-encoding: chunked\r\n' +
    'Content-Type: video/webm';
  const head = parseHead(text);
  const arrived = overIpc(handedHead(head, text.length + 4));
  assert.equal(arrived.bytes, text.length + 4);
  const again = receivedHead(arrived);
  assertSameHead(again, head);
  // What the source's checks read from it.
  assert.equal(again.path, '/live/my cam.webm');
  assert.deepEqual(again.query.getAll('key'), ['a+b c', 'second']);
  assert.equal(again.headers.get('transfer-encoding'), 'gzip, chunked');
  assert.equal(again.headers.get('x-mkvcast-realtime'), 'yes');
  assert.deepEqual(
    again.fields.map(([name]) => name),
    ['Host', 'Authorization', 'X-Mkvcast-Realtime', 'Transfer-Encoding', 'transfer-encoding', 'Content-Type'],
  );
});

test('a head the edge could not have parsed is refused with 400', () => {
  const good = handedHead(parseHead('PUT /live/a HTTP/1.1\r\nHost: x'), 40);
  const variants: [string, unknown][] = [
    ['method', { ...good, method: 'P T' }],
    ['method type', { ...good, method: 7 }],
    ['relative path', { ...good, path: 'live/a' }],
    ['version', { ...good, version: '2.0' }],
    ['size', { ...good, bytes: -1 }],
    ['size', { ...good, bytes: MAX_HEAD_BYTES + 5 }],
    ['query', { ...good, query: 'a=b' }],
    ['header name', { ...good, headers: [['Bad Name', 'x']] }],
    ['header value', { ...good, headers: [['X-A', 'a\r\nX-Injected: 1']] }],
    ['header pair', { ...good, headers: [['X-A']] }],
    ['too large', { ...good, headers: [['X-A', 'a'.repeat(MAX_HEAD_BYTES)]] }],
    ['missing', {}],
  ];
  for (const [what, handed] of variants) {
    assert.throws(() => receivedHead(handed as HandedHead), { code: 'MKV_ERR_BAD_REQUEST' }, what);
  }
  assert.equal(receivedHead(good).headers.get('host'), 'x');
});
