import { MkvcastError } from '../errors.js';

/** An error answered to an HTTP client; its status comes from the one table below. */
export class HttpError extends MkvcastError {
  readonly headers: Record<string, string>;

  constructor(code: keyof typeof HTTP_STATUS, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.headers = headers;
  }

  get status(): number {
    return HTTP_STATUS[this.code as keyof typeof HTTP_STATUS];
  }
}

/** Every error that reaches a client, and its status (RFC 9110 §15). */
export const HTTP_STATUS = {
  MKV_ERR_BAD_REQUEST: 400,
  MKV_ERR_UNAUTHORIZED: 401,
  MKV_ERR_FORBIDDEN: 403,
  MKV_ERR_STREAM_NOT_FOUND: 404,
  MKV_ERR_METHOD_NOT_ALLOWED: 405,
  MKV_ERR_PUBLISHER_CONFLICT: 409,
  MKV_ERR_UNSUPPORTED_MEDIA: 415,
  MKV_ERR_HEADERS_TOO_LARGE: 431,
  MKV_ERR_SERVER_FULL: 503,
  // Hooks and tokens (see docs/operations.md, "Hooks and authentication").
  MKV_ERR_HOOK_REFUSED: 403,
  MKV_ERR_HOOK_FAILED: 403,
  MKV_ERR_HOOKS_BUSY: 503,
  MKV_ERR_TOKEN_MISSING: 401,
  MKV_ERR_TOKEN_INVALID: 401,
  MKV_ERR_TOKEN_EXPIRED: 401,
  MKV_ERR_TOKEN_FORBIDDEN: 403,
  MKV_ERR_AUTH_UNAVAILABLE: 503,
  MKV_ERR_VERSION_NOT_SUPPORTED: 505,
} as const;

export const REASON: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  100: 'Continue',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  415: 'Unsupported Media Type',
  431: 'Request Header Fields Too Large',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};
