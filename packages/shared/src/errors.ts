/**
 * One base error class for the whole server. Every error carries a stable
 * `code` (MKV_ERR_…) that callers match on; the message is for people.
 */
export class MkvcastError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
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

/** One line for a person: our own errors by message, system errors by message and code. */
export function describeError(err: unknown): string {
  if (err instanceof MkvcastError) return err.message;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
