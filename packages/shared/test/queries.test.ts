import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MkvcastError } from '../src/errors.js';
import { HttpError } from '../src/http/errors.js';
import { PendingQueries, answerQuery, type AnswerMessage } from '../src/protocol/api.js';

test('an answer resolves the query with its id; an error answer rejects it with the code typed again', async () => {
  const pending = new PendingQueries(4, 1000);
  const sent: number[] = [];
  const a = pending.ask<string>('a', (id) => (sent.push(id), true));
  const b = pending.ask<string>('b', (id) => (sent.push(id), true));
  assert.equal(pending.size, 2);
  pending.answer({ type: 'answer', id: sent[1]!, error: { code: 'MKV_ERR_STREAM_NOT_FOUND', message: 'no x' } });
  pending.answer({ type: 'answer', id: sent[0]!, result: 'fine' });
  assert.equal(await a, 'fine');
  await assert.rejects(b, (err: unknown) => err instanceof HttpError && err.code === 'MKV_ERR_STREAM_NOT_FOUND' && err.status === 404);
  assert.equal(pending.size, 0);
});

test('at most `limit` wait at once: the next is refused with MKV_ERR_BUSY, at once', async () => {
  const pending = new PendingQueries(2, 10_000);
  const waiting = [pending.ask('1', () => true), pending.ask('2', () => true)];
  await assert.rejects(pending.ask('3', () => true), (err: unknown) => err instanceof HttpError && err.code === 'MKV_ERR_BUSY' && err.status === 503);
  pending.close();
  for (const w of waiting) await assert.rejects(w, (err: unknown) => err instanceof MkvcastError && err.code === 'MKV_ERR_UNAVAILABLE');
  assert.equal(pending.size, 0);
});

test('an unanswered query times out with MKV_ERR_TIMEOUT and is forgotten; its late answer is dropped', async () => {
  const pending = new PendingQueries(2, 30);
  let id = 0;
  await assert.rejects(pending.ask('slow', (i) => ((id = i), true)), (err: unknown) => err instanceof HttpError && err.code === 'MKV_ERR_TIMEOUT' && err.status === 504);
  assert.equal(pending.size, 0);
  pending.answer({ type: 'answer', id, result: 'late' });
  assert.equal(pending.size, 0);
});

test('nobody to ask: MKV_ERR_UNAVAILABLE without waiting for the timeout', async () => {
  const pending = new PendingQueries(2, 60_000);
  await assert.rejects(pending.ask('gone', () => false), (err: unknown) => err instanceof HttpError && err.code === 'MKV_ERR_UNAVAILABLE');
  assert.equal(pending.size, 0);
});

test('answerQuery sends the result, or the code and message of the error (500s without their details)', async () => {
  const answers: AnswerMessage[] = [];
  await answerQuery(1, () => Promise.resolve({ ok: 1 }), (a) => answers.push(a));
  await answerQuery(2, () => {
    throw new HttpError('MKV_ERR_CLIENT_NOT_FOUND', 'no player 1-9');
  }, (a) => answers.push(a));
  await answerQuery(3, () => {
    throw new Error('a bug, with private details');
  }, (a) => answers.push(a));
  assert.deepEqual(answers, [
    { type: 'answer', id: 1, result: { ok: 1 } },
    { type: 'answer', id: 2, error: { code: 'MKV_ERR_CLIENT_NOT_FOUND', message: 'no player 1-9' } },
    { type: 'answer', id: 3, error: { code: 'MKV_ERR_INTERNAL', message: 'internal error' } },
  ]);
});
