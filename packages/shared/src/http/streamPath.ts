/**
 * A stream name: 1 to 128 of RFC 3986's unreserved characters (§2.3), so a
 * name is the same in a URL, a file name, a log line and a metric label, and
 * never needs percent-encoding. The one rule for names, wherever they come
 * from: the CLI, the config file, a player's or a publisher's path.
 */
export const STREAM_NAME = /^[A-Za-z0-9._~-]{1,128}$/;

/** `/live/<name>`, optionally with `.mkv` or `.webm` (which is not part of the name). */
const STREAM_PATH = /^\/live\/([A-Za-z0-9._~-]{1,128}?)(?:\.(?:mkv|webm))?$/;

/** Whether `name` may name a stream. */
export function isStreamName(name: string): boolean {
  return STREAM_NAME.test(name);
}

/**
 * The stream a request path names, or null when it names none. `path` is the
 * percent-decoded path (RequestHead.path): `/live/cam%2Ewebm` is `cam`, as
 * RFC 3986 §6.2.2.2 makes encoded unreserved characters equivalent, while
 * `/live/a%20b` decodes to `a b`, which no stream can be called: null.
 */
export function streamNameOf(path: string): string | null {
  return STREAM_PATH.exec(path)?.[1] ?? null;
}

/** A path under /live/ that names no stream that can exist (not the listing, /live/). */
export function isLivePath(path: string): boolean {
  return path.startsWith('/live/') && path.length > '/live/'.length;
}
