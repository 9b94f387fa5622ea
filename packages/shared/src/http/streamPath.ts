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

/** What a DASH path names under a stream: its manifest, its init segment, or the media segment starting at `t`. */
export type DashResource = { kind: 'manifest' } | { kind: 'init' } | { kind: 'segment'; t: number };

/**
 * `/live/<name>/manifest.mpd`, `/live/<name>/init.webm`, `/live/<name>/<t>.webm`
 * (t: a decimal timestamp, no sign, no leading zero, at most 15 digits so it
 * stays an exact number), with a name by the same rule as the stream path.
 */
const DASH_PATH = /^\/live\/([A-Za-z0-9._~-]{1,128})\/(manifest\.mpd|init\.webm|(?:0|[1-9][0-9]{0,14})\.webm)$/;

/** The stream and DASH resource a path names, or null when it is not a DASH path. */
export function dashPathOf(path: string): { name: string; resource: DashResource } | null {
  const match = DASH_PATH.exec(path);
  if (!match) return null;
  const [, name, file] = match as unknown as [string, string, string];
  if (file === 'manifest.mpd') return { name, resource: { kind: 'manifest' } };
  if (file === 'init.webm') return { name, resource: { kind: 'init' } };
  return { name, resource: { kind: 'segment', t: Number(file.slice(0, -'.webm'.length)) } };
}
