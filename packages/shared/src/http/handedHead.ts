import { HttpError } from './errors.js';
import { HTTP_TOKEN, MAX_HEAD_BYTES, headerMap, type RequestHead } from './request.js';

/**
 * A request head as it travels with its connection to another process (an
 * upload: edge → master → source), parsed once by the process that read it.
 * Plain data, so that it crosses Node's IPC channel as it is.
 */
export interface HandedHead {
  method: string;
  /** Percent-decoded path, without the query string. */
  path: string;
  /** The query's name/value pairs, decoded, in order. */
  query: [string, string][];
  version: '1.0' | '1.1';
  /** Header fields in arrival order, names as sent. */
  headers: [string, string][];
  /** Bytes the head took on the connection, request line to blank line: counted as the sender's. */
  bytes: number;
}

/** What to send along with a connection whose head was read as `head`, `bytes` long. */
export function handedHead(head: RequestHead, bytes: number): HandedHead {
  return { method: head.method, path: head.path, query: [...head.query], version: head.version, headers: head.fields, bytes };
}

/**
 * The head that came with a connection, checked as untrusted input: only what
 * parseHead could have produced passes, within its size limit. Throws
 * HttpError (400) for anything else.
 */
export function receivedHead(handed: HandedHead): RequestHead {
  const bad = (what: string): HttpError => new HttpError('MKV_ERR_BAD_REQUEST', `malformed request head handed over: ${what}`);
  const { method, path, query, version, headers, bytes } = handed as Partial<HandedHead>;
  if (typeof method !== 'string' || !HTTP_TOKEN.test(method)) throw bad('method');
  if (typeof path !== 'string' || !path.startsWith('/')) throw bad('path');
  if (version !== '1.0' && version !== '1.1') throw bad('version');
  if (!Number.isSafeInteger(bytes) || bytes! < 0 || bytes! > MAX_HEAD_BYTES + 4) throw bad('size');
  if (!isPairs(query)) throw bad('query');
  if (!isPairs(headers) || headers.some(([name, value]) => !HTTP_TOKEN.test(name) || value.includes('\r\n'))) throw bad('header field');
  // Decoding only shortens: the parts of a head that fit MAX_HEAD_BYTES fit it still.
  let size = method.length + path.length;
  for (const [a, b] of [...query, ...headers]) size += a.length + b.length;
  if (size > MAX_HEAD_BYTES) throw bad('size');
  return { method, path, query: new URLSearchParams(query), version, headers: headerMap(headers), fields: headers };
}

function isPairs(value: unknown): value is [string, string][] {
  return Array.isArray(value) && value.every((pair) => Array.isArray(pair) && pair.length === 2 && typeof pair[0] === 'string' && typeof pair[1] === 'string');
}
