import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { InputError, UsageError } from '@mkvcast/shared';
import { InputStalledError } from './errors.js';
import type { Session, SessionSource } from './session.js';
import { sleepUnlessClosed } from './sleep.js';

/** Schemes only ffmpeg reads: such an input is remuxed by a spawned ffmpeg. */
export const FFMPEG_URL = /^(rtsps?|rtmp[st]?e?|rtmpts|srt|udp|rtp):\/\//i;
/** An HLS playlist over http(s): ffmpeg follows it; other http(s) inputs are pulled natively. */
export const HLS_URL = /^https?:\/\/[^?#]*\.m3u8([?#].*)?$/i;

/** True when an input path is read through ffmpeg (see FfmpegUrlSource). */
export function readsThroughFfmpeg(path: string): boolean {
  return FFMPEG_URL.test(path) || HLS_URL.test(path);
}

/**
 * util-linux's setpriv, to start ffmpeg with a parent-death signal: a source process that
 * crashes must not leave an ffmpeg behind that holds a listener's port (ffmpeg waiting for an
 * encoder never writes, so never learns its reader is gone). Node cannot set PR_SET_PDEATHSIG
 * itself. Without setpriv ffmpeg is started directly.
 */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;

/** Bytes of ffmpeg's stderr kept for the log when it exits: its last lines say why. */
const STDERR_TAIL = 4096;

export interface FfmpegUrlOptions {
  /** First wait after an ffmpeg that delivered nothing; doubles per such run. */
  minBackoffMs?: number;
  /** The wait never grows past this. */
  maxBackoffMs?: number;
  /** No output for this long while we wait for it: ffmpeg is stopped and started again. */
  idleTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface FfmpegInput {
  url: string;
  /** ffmpeg waits for an encoder to connect. */
  listen: boolean;
  /** Options before `-i`. */
  args: string[];
  /** How the audio is written (default: copied). */
  audio?: string[];
}

/**
 * SRT and UDP carry MPEG-TS, whose AAC (what OBS and cameras send) is ADTS:
 * copied into Matroska, ffmpeg stops with "Error parsing AAC extradata". The
 * audio alone is re-encoded to AAC, as for MPEG-TS uploads (remux.ts); the
 * video is always copied.
 */
const TS_AUDIO = ['-c:a', 'aac', '-b:a', '128k'];

/**
 * How ffmpeg is to open a URL. RTMP on a wildcard host (rtmp://0.0.0.0:1935/live/x) or with
 * `?listen=1` waits for an encoder to publish (`-listen 1`); an SRT URL with mode=listener
 * and udp:// wait too. Anything else is pulled.
 */
export function ffmpegInput(text: string): FfmpegInput {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new UsageError(`bad input URL "${text}"`);
  }
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  if (scheme.startsWith('rtmp')) {
    const wildcard = parsed.hostname === '0.0.0.0' || parsed.hostname === '[::]';
    const asked = parsed.searchParams.get('listen') === '1';
    if (asked) {
      // Ours, not the stream key's: RTMP would send the query as part of the play path.
      parsed.searchParams.delete('listen');
      text = parsed.href.replace(/\?$/, '');
    }
    if (wildcard || asked) return { url: text, listen: true, args: ['-listen', '1'] };
    return { url: text, listen: false, args: [] };
  }
  if (scheme === 'srt') {
    const listen = parsed.searchParams.get('mode') === 'listener';
    return { url: text, listen, args: [], audio: TS_AUDIO };
  }
  if (scheme === 'udp' || scheme === 'rtp') return { url: text, listen: true, args: [], audio: TS_AUDIO };
  // RTSP over TCP: UDP's default needs ports a firewall often closes, and loses packets.
  if (scheme === 'rtsp' || scheme === 'rtsps') return { url: text, listen: false, args: ['-rtsp_transport', 'tcp'] };
  return { url: text, listen: false, args: [] };
}

/**
 * Any URL ffmpeg can read (RTSP cameras, RTMP/SRT, HLS playlists) or listen on (RTMP and SRT
 * listeners for encoders such as OBS), as Matroska: one spawned `ffmpeg -i <url> -c copy -f
 * matroska pipe:1` per session, at most one at a time. When it exits (the camera dropped, the
 * encoder stopped publishing) another is started, at once after a run that delivered media,
 * after a doubling backoff up to a cap after one that did not. The ingest continues the stream
 * over each new run's header, as it does for a returning upstream.
 */
export class FfmpegUrlSource implements SessionSource {
  readonly #ffmpeg: string;
  readonly #input: FfmpegInput;
  readonly #shown: string;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #idle: number;
  readonly #log: (line: string) => void;
  #backoff: number;
  #runs = 0;
  #closed = false;
  #child: ChildProcess | undefined;
  /** Settles when the last ffmpeg has exited: the next one starts only then (one port, one process). */
  #exited: Promise<void> = Promise.resolve();
  /** Did the last run deliver any bytes? undefined before the first. */
  #delivered: boolean | undefined;
  readonly #wakers = new Set<() => void>();

  constructor(url: string, ffmpeg: string | null, options: FfmpegUrlOptions = {}) {
    if (!ffmpeg) throw new InputError(`${redact(url)} can be read only through ffmpeg; start master with --ffmpeg (or put ffmpeg on PATH)`);
    this.#ffmpeg = ffmpeg;
    this.#input = ffmpegInput(url);
    this.#shown = redact(url);
    this.#minBackoff = options.minBackoffMs ?? 250;
    this.#maxBackoff = Math.max(options.maxBackoffMs ?? 10_000, this.#minBackoff);
    this.#idle = options.idleTimeoutMs ?? 15_000;
    this.#log = options.log ?? (() => {});
    this.#backoff = this.#minBackoff;
  }

  get listening(): boolean {
    return this.#input.listen;
  }

  /** The next run of ffmpeg; null once closed. Rejects with the signal's reason when it aborts. */
  async next(signal: AbortSignal): Promise<Session | null> {
    signal.throwIfAborted();
    if (this.#closed) return null;
    if (this.#delivered === true) this.#backoff = this.#minBackoff;
    else if (this.#delivered === false) {
      const ms = this.#backoff;
      this.#backoff = Math.min(ms * 2, this.#maxBackoff);
      this.#log(`ffmpeg for ${this.#shown} delivered nothing; starting it again in ${ms} ms`);
      if (!(await this.#sleep(ms, signal))) return null;
    }
    this.#child?.kill('SIGKILL');
    await this.#exited;
    if (this.#closed) return null;
    this.#delivered = false;
    return this.#spawn();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#child?.kill('SIGKILL');
    for (const wake of this.#wakers) wake();
  }

  #spawn(): Session {
    const run = ++this.#runs;
    const { url, listen, args, audio = ['-c:a', 'copy'] } = this.#input;
    const argv = ['-hide_banner', '-nostdin', '-v', 'error', ...args, '-i', url, '-map', '0:v?', '-map', '0:a?', '-c:v', 'copy', ...audio, '-f', 'matroska', 'pipe:1'];
    // setpriv execs ffmpeg in place: the same pid, killed with us.
    const child = SETPRIV
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', this.#ffmpeg, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(this.#ffmpeg, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    });
    // The ingest reads this; ffmpeg's stdout is piped in so that a stall can be told from our own backpressure.
    const out = new PassThrough();
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL);
    });
    let bytes = 0;
    let seen = 0;
    // A listener waits as long as it takes for an encoder; once media flows, silence is a stall.
    let armed = !listen;
    child.stdout!.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      armed = true;
      this.#delivered = true;
    });
    const watch = setInterval(() => {
      if (!armed) return;
      if (bytes === seen && out.readableLength === 0 && out.writableLength === 0) {
        out.destroy(new InputStalledError(`${this.#shown} sent nothing for ${this.#idle} ms`));
        child.kill('SIGKILL');
      }
      seen = bytes;
    }, this.#idle);
    // Ended by hand on exit: an ffmpeg that failed must fail the session, not end it cleanly.
    child.stdout!.pipe(out, { end: false });
    child.once('error', (err) => {
      clearInterval(watch);
      if (this.#child === child) this.#child = undefined;
      out.destroy(new InputError(`cannot run ${this.#ffmpeg}: ${err.message}`));
    });
    child.once('close', (code, sig) => {
      clearInterval(watch);
      if (this.#child === child) this.#child = undefined;
      const last = stderr.trim().split('\n').pop();
      if (!this.#closed && code !== 0 && sig !== 'SIGKILL') {
        out.destroy(new InputError(`ffmpeg for ${this.#shown} exited with ${code ?? sig}${last ? `: ${last}` : ''}`));
        return;
      }
      if (!this.#closed && last) this.#log(`ffmpeg for ${this.#shown}: ${last}`);
      out.end();
    });
    out.once('close', () => child.kill('SIGKILL'));
    this.#log(listen ? `waiting for an encoder on ${this.#shown} (run ${run})` : `reading ${this.#shown} through ffmpeg (run ${run})`);
    return { stream: out, label: `${this.#shown} (run ${run})`, kind: listen ? 'listener' : 'url' };
  }

  #sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    return sleepUnlessClosed(ms, signal, this.#wakers);
  }

}

/** A URL for the logs: a password or an SRT passphrase stays out of them. */
export function redact(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    for (const key of ['passphrase', 'key', 'token']) if (url.searchParams.has(key)) url.searchParams.set(key, '***');
    return url.href;
  } catch {
    return text;
  }
}
