// Small loopback HTTP helpers for the orchestrator: a free port, a bounded GET, polling.
import http from 'node:http';
import net from 'node:net';
import { sleep } from './children.js';

const MAX_BODY_BYTES = 1024 * 1024;

/** A port that was free a moment ago on 127.0.0.1 (for servers that cannot report theirs). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface GetResult {
  status: number;
  body: string;
}

/**
 * GET on a fresh connection; resolves with the status and up to 1 MiB of body, or null on any
 * error or after `timeoutMs`. Never rejects. Not for live streams (it waits for the end).
 */
export function get(url: string, timeoutMs: number): Promise<GetResult | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: GetResult | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => {
        body += s;
        if (body.length > MAX_BODY_BYTES) finish({ status: res.statusCode ?? 0, body });
      });
      res.once('end', () => finish({ status: res.statusCode ?? 0, body }));
      res.once('error', () => finish(null));
    });
    req.once('error', () => finish(null));
    const timer = setTimeout(() => finish(null), timeoutMs);
  });
}

/**
 * Calls `probe` every `everyMs` until it returns a value other than null, `timeoutMs` passes
 * (resolves null) or `abort()` returns a reason (throws it).
 */
export async function poll<T>(
  probe: () => Promise<T | null>,
  options: { timeoutMs: number; everyMs: number; abort?: () => string | null },
): Promise<T | null> {
  const deadline = performance.now() + options.timeoutMs;
  while (performance.now() < deadline) {
    const why = options.abort?.() ?? null;
    if (why !== null) throw new Error(why);
    const value = await probe();
    if (value !== null) return value;
    await sleep(options.everyMs);
  }
  return null;
}
