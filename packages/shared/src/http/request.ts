import { HttpError } from './errors.js';

/** Largest request head we read (request line + headers). */
export const MAX_HEAD_BYTES = 8 * 1024;

export interface RequestHead {
  method: string;
  /** Path without the query string, percent-decoded. */
  path: string;
  query: URLSearchParams;
  version: '1.0' | '1.1';
  /** Lower-cased names; repeated headers joined with ', '. */
  headers: Map<string, string>;
  /** The header fields in arrival order, names as sent: what a hand-off to another process carries. */
  fields: [string, string][];
}

const HEAD_END = Buffer.from('\r\n\r\n');
/** RFC 9110 §5.6.2: a method or a field name. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Collects a request head across reads. push() returns the parsed head once
 * the blank line has arrived (with any body bytes after it), undefined while
 * more is needed, and throws HttpError for a malformed or oversized head.
 */
export class RequestHeadReader {
  #chunks: Buffer[] = [];
  #bytes = 0;

  /** Every byte pushed so far. */
  get received(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
  }

  push(chunk: Buffer): { head: RequestHead; rest: Buffer } | undefined {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    const all = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#bytes);
    this.#chunks = [all];
    const end = all.indexOf(HEAD_END);
    if (end === -1) {
      // A head of MAX_HEAD_BYTES may still end here: 3 bytes of its CRLF CRLF can have come.
      if (this.#bytes > MAX_HEAD_BYTES + HEAD_END.length - 1) throw new HttpError('MKV_ERR_HEADERS_TOO_LARGE', 'request head too large');
      return undefined;
    }
    if (end > MAX_HEAD_BYTES) throw new HttpError('MKV_ERR_HEADERS_TOO_LARGE', 'request head too large');
    return { head: parseHead(all.toString('latin1', 0, end)), rest: all.subarray(end + HEAD_END.length) };
  }
}

/** Parses a request line and header fields (RFC 9112 §3, §5). */
export function parseHead(text: string): RequestHead {
  const lines = text.split('\r\n');
  const [method, target, protocol, extra] = lines[0]!.split(' ');
  if (!method || !target || !protocol || extra !== undefined || !HTTP_TOKEN.test(method)) {
    throw new HttpError('MKV_ERR_BAD_REQUEST', 'malformed request line');
  }
  if (protocol !== 'HTTP/1.1' && protocol !== 'HTTP/1.0') {
    if (!protocol.startsWith('HTTP/')) throw new HttpError('MKV_ERR_BAD_REQUEST', 'malformed request line');
    throw new HttpError('MKV_ERR_VERSION_NOT_SUPPORTED', `${protocol} is not supported`);
  }
  const fields: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    if (colon <= 0 || !HTTP_TOKEN.test(name)) throw new HttpError('MKV_ERR_BAD_REQUEST', 'malformed header field');
    fields.push([name, line.slice(colon + 1).trim()]);
  }
  const { path, query } = splitTarget(target);
  return { method, path, query, version: protocol === 'HTTP/1.1' ? '1.1' : '1.0', headers: headerMap(fields), fields };
}

/** Header fields by lower-cased name, repeated ones joined with ', ' (RFC 9110 §5.3). */
export function headerMap(fields: readonly (readonly [string, string])[]): Map<string, string> {
  const headers = new Map<string, string>();
  for (const [field, value] of fields) {
    const name = field.toLowerCase();
    const prior = headers.get(name);
    headers.set(name, prior === undefined ? value : `${prior}, ${value}`);
  }
  return headers;
}

function splitTarget(target: string): { path: string; query: URLSearchParams } {
  let url: URL;
  try {
    // Origin-form (RFC 9112 §3.2.1) is a path even when it starts with "//";
    // resolved against a base, that would name a host. Absolute-form: §3.2.2.
    url = target.startsWith('/') ? new URL(`http://localhost${target}`) : new URL(target, 'http://localhost');
  } catch {
    throw new HttpError('MKV_ERR_BAD_REQUEST', 'malformed request target');
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    throw new HttpError('MKV_ERR_BAD_REQUEST', 'malformed request target');
  }
  return { path, query: url.searchParams };
}
