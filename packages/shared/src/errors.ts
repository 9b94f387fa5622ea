/**
 * Every error code the server uses. Stable: callers, logs and the Control
 * API's JSON answers match on them. Those that reach an HTTP client have
 * their status in the one table of http/errors.ts.
 */
export const ERROR_CODES = [
  // HTTP requests and answers
  'MKV_ERR_BAD_REQUEST',
  'MKV_ERR_UNAUTHORIZED',
  'MKV_ERR_FORBIDDEN',
  'MKV_ERR_NOT_FOUND',
  'MKV_ERR_STREAM_NOT_FOUND',
  'MKV_ERR_CLIENT_NOT_FOUND',
  'MKV_ERR_SEGMENT_NOT_FOUND',
  'MKV_ERR_METHOD_NOT_ALLOWED',
  'MKV_ERR_PUBLISHER_CONFLICT',
  'MKV_ERR_STREAM_CUT',
  'MKV_ERR_UNSUPPORTED_MEDIA',
  'MKV_ERR_HEADERS_TOO_LARGE',
  'MKV_ERR_INTERNAL',
  'MKV_ERR_RELOAD',
  'MKV_ERR_SERVER_FULL',
  'MKV_ERR_STREAM_NOT_STARTED',
  'MKV_ERR_UNAVAILABLE',
  'MKV_ERR_BUSY',
  'MKV_ERR_TIMEOUT',
  'MKV_ERR_VERSION_NOT_SUPPORTED',
  // Hooks and tokens
  'MKV_ERR_HOOK_REFUSED',
  'MKV_ERR_HOOK_FAILED',
  'MKV_ERR_HOOKS_BUSY',
  'MKV_ERR_TOKEN_MISSING',
  'MKV_ERR_TOKEN_INVALID',
  'MKV_ERR_TOKEN_EXPIRED',
  'MKV_ERR_TOKEN_FORBIDDEN',
  'MKV_ERR_AUTH_UNAVAILABLE',
  // Media and wire
  'MKV_ERR_CORRUPT_STREAM',
  'MKV_ERR_ELEMENT_TOO_LARGE',
  'MKV_ERR_TRUNCATED_STREAM',
  'MKV_ERR_FRAME_TOO_LARGE',
  'MKV_ERR_PROTOCOL',
  'MKV_ERR_EDGE_TOO_SLOW',
  // Inputs
  'MKV_ERR_INPUT',
  'MKV_ERR_INPUT_STALLED',
  'MKV_ERR_BAD_CHUNKED',
  'MKV_ERR_UPLOAD_TRUNCATED',
  'MKV_ERR_UPLOAD_UNSTREAMABLE',
  'MKV_ERR_UPSTREAM',
  'MKV_ERR_STREAM_CLOSED',
  // Process life
  'MKV_ERR_USAGE',
  'MKV_ERR_CONFIG',
  'MKV_ERR_START',
  'MKV_ERR_LISTEN',
  'MKV_ERR_FAIL_POINT',
  'MKV_ERR_STATE',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** A code that crossed a process boundary as a plain string. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN_CODES.has(code);
}

/**
 * One base error class for the whole server. Every error carries a stable
 * `code` (MKV_ERR_…) that callers match on; the message is for people.
 */
export class MkvcastError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The input is not Matroska/WebM, or its bytes contradict the EBML rules. */
export class CorruptStreamError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_CORRUPT_STREAM', message);
  }
}

/** An element declares (or grows to) more bytes than we are willing to hold. */
export class ElementTooLargeError extends MkvcastError {
  constructor(what: string, size: number, limit: number) {
    super('MKV_ERR_ELEMENT_TOO_LARGE', `${what} of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** The input ended in the middle of an element. */
export class TruncatedStreamError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_TRUNCATED_STREAM', message);
  }
}

/** A wire frame is larger than the channel accepts. */
export class FrameTooLargeError extends MkvcastError {
  constructor(size: number, limit: number) {
    super('MKV_ERR_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** A wire frame that does not decode into a known message. */
export class ProtocolError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_PROTOCOL', message);
  }
}

/** A user mistake in options or input: printed as one line, never a stack. */
export class UsageError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_USAGE', message);
  }
}

/** The input could not be opened or read. */
export class InputError extends MkvcastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MKV_ERR_INPUT', message, options);
  }
}

/** Code misuse inside the server (a call in the wrong state): a bug, never a user's doing. */
export class StateError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_STATE', message);
  }
}

/** A stream was ended on an operator's command (the Control API). */
export class StreamCutError extends MkvcastError {
  constructor(name: string) {
    super('MKV_ERR_STREAM_CUT', `stream '${name}' was cut by an operator`);
  }
}

/** A published stream closed (its grace ran out, or the server stops) while a publisher was on its way in. */
export class StreamClosedError extends MkvcastError {
  constructor(message = 'stream closed') {
    super('MKV_ERR_STREAM_CLOSED', message);
  }
}

/** One line for a person: our own errors by message, system errors by message and code. */
export function describeError(err: unknown): string {
  if (err instanceof MkvcastError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
