import type { InputConfig, Logger } from '@mkvcast/shared';
import { FileSource } from './file.js';
import type { SessionSource } from './session.js';

/** The session source for an input: a file or stdin, an upstream URL, or a TCP port to listen on. */
export async function openInput(input: InputConfig, log: Logger): Promise<SessionSource & { live: boolean }> {
  void log;
  return Object.assign(new FileSource(input.path, input.loop), { live: false });
}
