import type { Readable } from 'node:stream';
import type { StreamInput } from '@mkvcast/shared';

/**
 * Where a session's bytes come from: a Readable, or a file's chunks (whose
 * buffers are reused: each is valid until the next is asked for). Destroying
 * it stops the reading.
 */
export type SessionBytes = Readable | (AsyncIterable<Buffer> & { destroy(error?: Error): void });

/** One input session: one upstream response, one TCP client, one publisher upload. */
export interface Session<Bytes extends SessionBytes = Readable> {
  /** Matroska/WebM bytes of this session; ends (or errors) when the session ends. */
  stream: Bytes;
  /** For logs: "http://host/x (attempt 3)", "tcp client 127.0.0.1:5555". */
  label: string;
  /** What kind of input it is, for the stats (default 'file'). */
  kind?: StreamInput['kind'];
  /** Release this session's media at its own timestamps' pace (a recording uploaded with ?realtime=1), whatever the input's setting. */
  paced?: boolean;
  /** A file's path: a file in another container is handed to ffmpeg by it, so that ffmpeg can seek. */
  path?: string;
  /** Called once when the ingest is done with the session, with the error that ended it, if any. */
  finish?: (error?: unknown) => void;
}

/** Produces sessions one after another until closed. */
export interface SessionSource {
  /** Resolves with the next session, or null when the source is finished for good (closed, or gave up). */
  next(signal: AbortSignal): Promise<Session<SessionBytes> | null>;
  /** Finished for good; `cause` (an operator cutting the stream) also ends a session in progress, where a source can. */
  close(cause?: Error): void;
}
