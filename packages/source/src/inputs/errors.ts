import { MkvcastError } from '@mkvcast/shared';

/** A chunked request body breaks RFC 9112 §7.1 (bad size line, missing CRLF, oversized line or trailers). */
export class ChunkedEncodingError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_BAD_CHUNKED', message);
  }
}

/** An upload's connection ended before the body its framing announced was complete. */
export class UploadTruncatedError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_UPLOAD_TRUNCATED', message);
  }
}

/** An upstream could not be used: non-200 answer, no answer in time, a bad or endless redirect. */
export class UpstreamError extends MkvcastError {
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super('MKV_ERR_UPSTREAM', message);
    this.status = status;
  }
}

/** A live input sent nothing for too long while we were waiting for it. */
export class InputStalledError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_INPUT_STALLED', message);
  }
}
