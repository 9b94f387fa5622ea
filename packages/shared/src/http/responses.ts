
const SERVER = 'mkvcast';

/** Reason phrases of the statuses the server answers with. */
export const REASON: Record<number, string> = {
  100: 'Continue',
  200: 'OK',
  204: 'No Content',
  304: 'Not Modified',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};


/** Content-Type from the stream's DocType (RFC 9559 §1, WebM's own registration). */
export function contentTypeFor(docType: string): string {
  return docType === 'webm' ? 'video/webm' : 'video/x-matroska';
}

/**
 * The head of a stream response, built once per stream and written to every
 * player: no Content-Length and no chunked coding, the body ends when the
 * connection closes (RFC 9112 §6.3 item 8); never cached.
 */
export function streamResponseHead(contentType: string): Buffer {
  return Buffer.from(
    'HTTP/1.1 200 OK\r\n' +
      `Server: ${SERVER}\r\n` +
      `Content-Type: ${contentType}\r\n` +
      'Cache-Control: no-cache, no-store\r\n' +
      'Pragma: no-cache\r\n' +
      'Access-Control-Allow-Origin: *\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      'Connection: close\r\n\r\n',
    'latin1',
  );
}

/** A complete small response with a body; the connection closes after it. */
export function simpleResponse(
  status: number,
  body: string,
  contentType = 'text/plain; charset=utf-8',
  headers: Record<string, string> = {},
  withBody = true,
): Buffer {
  const payload = Buffer.from(body, 'utf8');
  let head =
    `HTTP/1.1 ${status} ${REASON[status] ?? 'Unknown'}\r\n` +
    `Server: ${SERVER}\r\n` +
    `Content-Type: ${contentType}\r\n` +
    `Content-Length: ${payload.length}\r\n` +
    // An answer may set its own (a DASH 404 may be cached for a second).
    (Object.keys(headers).some((h) => h.toLowerCase() === 'cache-control') ? '' : 'Cache-Control: no-cache, no-store\r\n') +
    'Access-Control-Allow-Origin: *\r\n';
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  head += 'Connection: close\r\n\r\n';
  return withBody ? Buffer.concat([Buffer.from(head, 'latin1'), payload]) : Buffer.from(head, 'latin1');
}
