import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHead } from '../src/http/request.js';
import { isLivePath, isStreamName, streamNameOf } from '../src/http/streamPath.js';

test('stream names: 1 to 128 unreserved characters (letters, digits, . _ ~ -)', () => {
  for (const name of ['a', 'cam-1', 'my.cam_2~x', 'A'.repeat(128), '.webm', '...']) assert.ok(isStreamName(name), name);
  for (const name of ['', 'A'.repeat(129), 'a b', 'a/b', 'é', 'a%20b', 'a?b', 'a#b', 'a\u0000b']) assert.ok(!isStreamName(name), JSON.stringify(name));
});

test('/live/<name> with an optional .mkv or .webm that is not part of the name', () => {
  assert.equal(streamNameOf('/live/cam'), 'cam');
  assert.equal(streamNameOf('/live/cam.webm'), 'cam');
  assert.equal(streamNameOf('/live/cam.mkv'), 'cam');
  assert.equal(streamNameOf('/live/cam.mp4'), 'cam.mp4', 'another extension is part of the name');
  assert.equal(streamNameOf('/live/cam.webm.webm'), 'cam.webm');
  assert.equal(streamNameOf('/live/.webm'), '.webm', 'a name is never empty');
  assert.equal(streamNameOf(`/live/${'a'.repeat(128)}.webm`), 'a'.repeat(128));
  for (const path of ['/live/', '/live', '/', '/live/a/b', '/live//a', '/lived/a', '/x/live/a', `/live/${'a'.repeat(129)}`, '/live/a b', '/live/é']) {
    assert.equal(streamNameOf(path), null, path);
  }
});

test('percent-encoding: the rule applies to the decoded path; /live/a%20b names no stream', () => {
  const nameOf = (target: string): string | null => streamNameOf(parseHead(`GET ${target} HTTP/1.1`).path);
  assert.equal(nameOf('/live/a%20b'), null);
  assert.equal(nameOf('/live/a%2Fb'), null, 'an encoded slash is a slash');
  assert.equal(nameOf('/live/cam%2Ewebm'), 'cam', 'encoded unreserved characters are the same characters (RFC 3986 §6.2.2.2)');
  assert.equal(nameOf('/live/%63am'), 'cam');
  assert.equal(nameOf('/live/cam.webm?key=a%20b'), 'cam', 'the query is not part of the path');
});

test('isLivePath: anything under /live/ but the listing itself', () => {
  assert.ok(isLivePath('/live/a b'));
  assert.ok(isLivePath('/live/a/b'));
  assert.ok(!isLivePath('/live/'));
  assert.ok(!isLivePath('/live'));
  assert.ok(!isLivePath('/stats'));
});
