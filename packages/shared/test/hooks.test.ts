// The hook caller against real HTTP servers on port 0: what it POSTs, which answers let a
// client in, timeouts and unreachable hooks, and the bounds on calls in flight.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Hooks, type HookEvent } from '../src/auth/hooks.js';
import { HttpError } from '../src/http/errors.js';
import { Logger } from '../src/log.js';

/** A hook server: answers each POST with `answer(event)` (a status, or 'hang' to never answer). */
interface HookServer {
  url: string;
  events: HookEvent[];
  answer: (event: HookEvent) => number | 'hang';
  /** Resolves when the server has `count` events. */
  received: (count: number) => Promise<void>;
  close: () => Promise<void>;
}

async function hookServer(): Promise<HookServer> {
  const waiters: { count: number; resolve: () => void }[] = [];
  const hung: http.ServerResponse[] = [];
  const self: HookServer = {
    url: '',
    events: [],
    answer: () => 204,
    received: (count) => (self.events.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
    close: () => {
      for (const res of hung) res.destroy();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const event = JSON.parse(body) as HookEvent;
      assert.equal(req.headers['content-type'], 'application/json');
      self.events.push(event);
      for (const w of waiters.filter((w) => self.events.length >= w.count)) w.resolve();
      const answer = self.answer(event);
      if (answer === 'hang') hung.push(res);
      else res.writeHead(answer).end('a body the caller must not need');
    });
  });
  server.keepAliveTimeout = 100;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return self;
}

const event = (stream = 'cam'): HookEvent => ({
  action: 'on_play',
  stream,
  clientId: 'c-1',
  ip: '127.0.0.1',
  query: { token: 'abc', start: 'next' },
  userAgent: 'test/1',
});

async function refusal(promise: Promise<unknown>): Promise<HttpError> {
  const err = await promise.then(
    () => assert.fail('the hook should have refused'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof HttpError, `an HttpError, not ${String(err)}`);
  return err;
}

describe('Hooks.ask', () => {
  let server: HookServer;
  const log = new Logger('test', 'error');
  before(async () => {
    server = await hookServer();
  });
  after(() => server.close());

  it('POSTs the event as JSON and lets the client in on any 2xx', async () => {
    const hooks = new Hooks(log);
    for (const status of [200, 201, 204, 299]) {
      server.answer = () => status;
      await hooks.ask(server.url, event(`s${status}`), 2000);
    }
    assert.deepEqual(server.events.at(-1), { ...event('s299') });
    assert.deepEqual(hooks.inFlight, { asks: 0, tells: 0 });
  });

  it('refuses with 403 MKV_ERR_HOOK_REFUSED on anything else (3xx not followed, 4xx, 5xx)', async () => {
    const hooks = new Hooks(log);
    for (const status of [302, 403, 404, 500, 503]) {
      server.answer = () => status;
      const err = await refusal(hooks.ask(server.url, event(), 2000));
      assert.equal(err.code, 'MKV_ERR_HOOK_REFUSED', `status ${status}`);
      assert.equal(err.status, 403);
      assert.match(err.message, new RegExp(`on_play hook .*${status}`));
    }
  });

  it('refuses with 403 MKV_ERR_HOOK_FAILED when the hook does not answer in time', async () => {
    server.answer = () => 'hang';
    const t0 = performance.now();
    const err = await refusal(new Hooks(log).ask(server.url, event(), 300));
    assert.equal(err.code, 'MKV_ERR_HOOK_FAILED');
    assert.equal(err.status, 403);
    assert.match(err.message, /did not answer within 0.3 s/);
    assert.ok(performance.now() - t0 >= 250, 'it waited for the timeout');
  });

  it('refuses with 403 MKV_ERR_HOOK_FAILED when the hook cannot be reached', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await refusal(new Hooks(log).ask(`http://127.0.0.1:${port}/`, event(), 2000));
    assert.equal(err.code, 'MKV_ERR_HOOK_FAILED');
    assert.match(err.message, /could not be reached: .*ECONNREFUSED/);
  });

  it('past the bound of calls in flight, refuses at once with 503 MKV_ERR_HOOKS_BUSY', async () => {
    server.answer = () => 'hang';
    const hooks = new Hooks(log, { asks: 3, tells: 3 });
    const before = server.events.length;
    const waiting = [1, 2, 3].map(() => hooks.ask(server.url, event(), 1000).catch((e: unknown) => e));
    await server.received(before + 3);
    assert.equal(hooks.inFlight.asks, 3);
    const err = await refusal(hooks.ask(server.url, event(), 1000));
    assert.equal(err.code, 'MKV_ERR_HOOKS_BUSY');
    assert.equal(err.status, 503);
    assert.equal(server.events.length, before + 3, 'the refused call never reached the hook');
    for (const e of await Promise.all(waiting)) assert.equal((e as HttpError).code, 'MKV_ERR_HOOK_FAILED');
    assert.equal(hooks.inFlight.asks, 0, 'calls that timed out are no longer counted');
  });
});

describe('Hooks.tell', () => {
  it('sends in the order told, and drops (with a warning) past the bound', async () => {
    const server = await hookServer();
    try {
      server.answer = () => 'hang';
      const lines: string[] = [];
      const log = new Logger('test', 'error');
      log.warn = (text: string) => void lines.push(text);
      const hooks = new Hooks(log, { asks: 1, tells: 2 });
      const stop = (n: number): HookEvent => ({ ...event(), action: 'on_stop', clientId: `c-${n}`, bytes: n, durationMs: 10 * n, reason: 'client closed' });
      hooks.tell(server.url, stop(1), 300);
      hooks.tell(server.url, stop(2), 300);
      hooks.tell(server.url, stop(3), 300);
      await server.received(2);
      assert.deepEqual(server.events.map((e) => e.clientId), ['c-1', 'c-2']);
      assert.deepEqual(server.events[0], stop(1));
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /on_stop hook: 2 calls in flight already; one dropped/);
    } finally {
      await server.close();
    }
  });
});
