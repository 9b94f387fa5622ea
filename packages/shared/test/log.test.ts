import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Logger, type LogSink } from '../src/log.js';

function collector(): LogSink & { lines: string[] } {
  const lines: string[] = [];
  return { lines, write: (line) => void lines.push(line) };
}

test('JSON lines carry time, level, process and message, with the fields given', () => {
  const sink = collector();
  const log = new Logger('edge-2', { level: 'info', format: 'json', sink });
  log.info('player left', { ip: '127.0.0.1', bytes: 1234 });
  log.warn('careful');
  log.debug('not at info');
  assert.equal(sink.lines.length, 2);
  for (const line of sink.lines) assert.ok(line.endsWith('\n'), 'one line each');
  const first = JSON.parse(sink.lines[0]!) as Record<string, unknown>;
  assert.equal(first['level'], 'info');
  assert.equal(first['process'], 'edge-2');
  assert.equal(first['msg'], 'player left');
  assert.equal(first['ip'], '127.0.0.1');
  assert.equal(first['bytes'], 1234);
  assert.ok(!Number.isNaN(Date.parse(first['time'] as string)), `time: ${String(first['time'])}`);
  assert.equal((JSON.parse(sink.lines[1]!) as Record<string, unknown>)['level'], 'warn');
});

test('the level filters: error shows errors only, debug shows all', () => {
  const quiet = collector();
  const q = new Logger('source', { level: 'error', format: 'json', sink: quiet });
  q.warn('w');
  q.info('i');
  q.error('e');
  assert.deepEqual(quiet.lines.map((l) => (JSON.parse(l) as { msg: string }).msg), ['e']);
  const loud = collector();
  const l = new Logger('source', { level: 'debug', format: 'json', sink: loud });
  l.debug('d');
  assert.equal(loud.lines.length, 1);
});

test('pretty lines hold the time, level, process and message on one line, without colours off a terminal', () => {
  const sink = collector();
  new Logger('master', { format: 'pretty', sink }).info('listening on http://localhost:8080/', { edges: 2 });
  assert.equal(sink.lines.length, 1);
  const line = sink.lines[0]!;
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: master: listening on http:\/\/localhost:8080\/ \{"edges":2\}\n$/);
  assert.equal(line.split('\n').length, 2, 'a single line');
});
