import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_CODES, MkvcastError, StreamCutError, isErrorCode } from '../src/errors.js';
import { HTTP_STATUS, HttpError, errorAnswer, errorResponse, statusOf } from '../src/http/errors.js';
import { REASON } from '../src/http/responses.js';

/** Status line, headers (lower-cased names) and body of a response we built. */
function parse(response: Buffer): { status: number; headers: Map<string, string>; body: string } {
  const text = response.toString('utf8');
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4) };
}

test('every code in the HTTP table is a known code with a reason phrase for its status', () => {
  for (const [code, status] of Object.entries(HTTP_STATUS)) {
    assert.ok(isErrorCode(code), `${code} is not in ERROR_CODES`);
    assert.ok(REASON[status], `no reason phrase for ${status} (${code})`);
  }
  assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length, 'a code is listed twice');
  assert.ok(ERROR_CODES.every((c) => /^MKV_ERR_[A-Z_]+$/.test(c)));
});

test('an error answers with its status from the table, a JSON body naming its code, CORS header always', () => {
  const err = new HttpError('MKV_ERR_STREAM_NOT_FOUND', "no live stream named 'x'");
  const json = parse(errorResponse(err));
  assert.equal(json.status, 404);
  assert.equal(json.headers.get('content-type'), 'application/json');
  assert.equal(json.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual(JSON.parse(json.body), { error: { code: 'MKV_ERR_STREAM_NOT_FOUND', message: "no live stream named 'x'" } });

  const later = parse(errorResponse(new HttpError('MKV_ERR_UNAVAILABLE', 'later', { 'Retry-After': '2' })));
  assert.equal(later.status, 503);
  assert.equal(later.headers.get('retry-after'), '2');
  assert.equal(later.headers.get('access-control-allow-origin'), '*');
  assert.deepEqual(JSON.parse(later.body), { error: { code: 'MKV_ERR_UNAVAILABLE', message: 'later' } });

  const head = parse(errorResponse(err, { withBody: false }));
  assert.equal(head.body, '');
});

test('errors not meant for clients answer 500 MKV_ERR_INTERNAL without their message; typed ones keep theirs', () => {
  for (const err of [new Error('secret detail'), new MkvcastError('MKV_ERR_STATE', 'secret detail'), 'a string']) {
    const answer = errorAnswer(err);
    assert.equal(answer.status, 500);
    assert.equal(answer.code, 'MKV_ERR_INTERNAL');
    assert.doesNotMatch(answer.message, /secret/);
  }
  const cut = errorAnswer(new StreamCutError('cam'));
  assert.equal(cut.status, statusOf('MKV_ERR_STREAM_CUT'));
  assert.equal(cut.code, 'MKV_ERR_STREAM_CUT');
  assert.match(cut.message, /cam/);
});

test('a code that crossed a process boundary is checked against the list', () => {
  assert.equal(isErrorCode('MKV_ERR_USAGE'), true);
  assert.equal(isErrorCode('MKV_ERR_NO_SUCH_THING'), false);
  assert.equal(isErrorCode(42), false);
});
