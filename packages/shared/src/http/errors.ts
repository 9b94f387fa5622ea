import { MkvcastError, type ErrorCode } from '../errors.js';
import { simpleResponse } from './responses.js';

/**
 * Every error that reaches an HTTP client, and its status (RFC 9110 §15):
 * the one place where codes become statuses. A code not here answers 500.
 */
export const HTTP_STATUS = {
  MKV_ERR_BAD_REQUEST: 400,
  MKV_ERR_CORRUPT_STREAM: 400,
  MKV_ERR_BAD_CHUNKED: 400,
  MKV_ERR_UPLOAD_TRUNCATED: 400,
  MKV_ERR_UPLOAD_UNSTREAMABLE: 400,
  MKV_ERR_UNAUTHORIZED: 401,
  MKV_ERR_FORBIDDEN: 403,
  MKV_ERR_NOT_FOUND: 404,
  MKV_ERR_STREAM_NOT_FOUND: 404,
  MKV_ERR_CLIENT_NOT_FOUND: 404,
  MKV_ERR_SEGMENT_NOT_FOUND: 404,
  MKV_ERR_METHOD_NOT_ALLOWED: 405,
  MKV_ERR_PUBLISHER_CONFLICT: 409,
  MKV_ERR_RELOAD: 409,
  MKV_ERR_STREAM_CUT: 410,
  MKV_ERR_STREAM_CLOSED: 410,
  MKV_ERR_UNSUPPORTED_MEDIA: 415,
  MKV_ERR_CONFIG: 422,
  MKV_ERR_USAGE: 422,
  MKV_ERR_HEADERS_TOO_LARGE: 431,
  MKV_ERR_INTERNAL: 500,
  MKV_ERR_SERVER_FULL: 503,
  MKV_ERR_STREAM_NOT_STARTED: 503,
  MKV_ERR_UNAVAILABLE: 503,
  MKV_ERR_BUSY: 503,
  MKV_ERR_TIMEOUT: 504,
  MKV_ERR_VERSION_NOT_SUPPORTED: 505,
  // Hooks and tokens (see docs/operations.md, "Hooks and authentication").
  MKV_ERR_HOOK_REFUSED: 403,
  MKV_ERR_HOOK_FAILED: 403,
  MKV_ERR_HOOKS_BUSY: 503,
  MKV_ERR_TOKEN_MISSING: 401,
  MKV_ERR_TOKEN_INVALID: 401,
  MKV_ERR_TOKEN_EXPIRED: 401,
  MKV_ERR_TOKEN_FORBIDDEN: 403,
  MKV_ERR_AUTH_UNAVAILABLE: 503,
} as const satisfies Partial<Record<ErrorCode, number>>;

export type HttpErrorCode = keyof typeof HTTP_STATUS;


/** The status an error code answers with. */
export function statusOf(code: ErrorCode): number {
  return (HTTP_STATUS as Partial<Record<ErrorCode, number>>)[code] ?? 500;
}

/** An error answered to an HTTP client; its status comes from the one table above. */
export class HttpError extends MkvcastError {
  readonly headers: Record<string, string>;

  constructor(code: HttpErrorCode, message: string, headers: Record<string, string> = {}, options?: { cause?: unknown }) {
    super(code, message, options);
    this.headers = headers;
  }

  get status(): number {
    return statusOf(this.code);
  }
}

/** What a client is told about an error: the code, the status, a message, extra headers. */
export interface ErrorAnswer {
  status: number;
  code: ErrorCode;
  message: string;
  headers: Record<string, string>;
}

/**
 * Any error as the client sees it. Our own errors keep their code and
 * message; anything else is a bug, answered 500 without its details (the
 * caller logs those).
 */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (err instanceof MkvcastError) {
    const status = statusOf(err.code);
    // A 500 of ours is still a bug: its message stays in the log.
    const message = status === 500 ? 'internal error' : err.message;
    return { status, code: status === 500 ? 'MKV_ERR_INTERNAL' : err.code, message, headers: err instanceof HttpError ? err.headers : {} };
  }
  return { status: 500, code: 'MKV_ERR_INTERNAL', message: 'internal error', headers: {} };
}

/** An answer of ours was a 500: the caller should log `err` (it was a bug, or a failure we did not name). */
export function isInternal(answer: ErrorAnswer): boolean {
  return answer.status >= 500 && answer.code === 'MKV_ERR_INTERNAL';
}

/**
 * The complete response for an error, to players, publishers and the Control
 * API alike: `{ "error": { "code", "message" } }`. Built by simpleResponse, so
 * it carries the same CORS header as every answer.
 */
export function errorResponse(err: unknown, options: { withBody?: boolean } = {}): Buffer {
  const answer = errorAnswer(err);
  const body = JSON.stringify({ error: { code: answer.code, message: answer.message } }) + '\n';
  return simpleResponse(answer.status, body, 'application/json', answer.headers, options.withBody ?? true);
}
