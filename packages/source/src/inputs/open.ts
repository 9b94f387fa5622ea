import type { InputConfig, Logger } from '@mkvcast/shared';
import { FfmpegUrlSource, readsThroughFfmpeg } from './ffmpegUrl.js';
import { FileSource } from './file.js';
import type { SessionSource } from './session.js';
import { TcpListenSource } from './tcp.js';
import { UpstreamSource } from './upstream.js';

export interface InputOptions {
  /** A silent upstream or TCP publisher is cut off after this long, ms. */
  idleTimeoutMs: number;
  /** Reads URLs only ffmpeg can (rtsp://, rtmp://, srt://, udp://, HLS); null: such inputs are refused. */
  ffmpeg?: string | null;
}

/**
 * The session source for an input: a file or stdin (`live` false: its end, or
 * its error, ends the stream), or a live one that reconnects or waits for the
 * next sender: an http(s) upstream with fail-over URLs, or a TCP port.
 */
export async function openInput(input: InputConfig, log: Logger, options: InputOptions): Promise<SessionSource & { live: boolean }> {
  const say = (line: string): void => log.warn(`stream '${input.name}': ${line}`);
  if (readsThroughFfmpeg(input.path)) {
    const source = new FfmpegUrlSource(input.path, options.ffmpeg ?? null, { idleTimeoutMs: options.idleTimeoutMs, log: (line) => log.info(`stream '${input.name}': ${line}`) });
    return Object.assign(source, { live: true });
  }
  if (/^https?:\/\//i.test(input.path)) {
    const source = new UpstreamSource([input.path, ...(input.fallbacks ?? [])], { idleTimeoutMs: options.idleTimeoutMs, log: say });
    return Object.assign(source, { live: true });
  }
  if (/^tcp:\/\//i.test(input.path)) {
    const source = await TcpListenSource.listen(input.path, say, { idleTimeoutMs: options.idleTimeoutMs });
    log.info(`stream '${input.name}': listening for a sender on ${input.path}`);
    return Object.assign(source, { live: true });
  }
  return Object.assign(new FileSource(input.path, input.loop), { live: false });
}
