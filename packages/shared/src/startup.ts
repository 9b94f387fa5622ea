import { MkvcastError, describeError } from './errors.js';

/**
 * A fault for tests of the supervisor: `MKVCAST_FAIL_START=source` (or
 * `edge`) makes that child fail as it starts, as a broken install would.
 */
export function failPoint(role: 'source' | 'edge'): void {
  if (process.env.MKVCAST_FAIL_START === role) {
    throw new MkvcastError('MKV_ERR_FAIL_POINT', `failing at start, as MKVCAST_FAIL_START=${role} asks`);
  }
}

/**
 * A child process that cannot start: tells the master why over IPC (the
 * master prints it once, not at every retry), or says it on stderr when it
 * runs on its own. Then exits 1.
 */
export function exitAtStart(role: string, err: unknown): void {
  const message = describeError(err);
  if (process.connected && process.send) {
    process.send({ type: 'failed', message }, () => process.exit(1));
    return;
  }
  process.stderr.write(`mkvcast ${role}: ${message}\n`);
  process.exit(1);
}

/**
 * The environment variable that carries a child's config from the master.
 * Not argv: the config holds secrets (keys, tokens), and any local user can
 * read a process's command line, while its environment is its owner's alone.
 */
export const CHILD_CONFIG_ENV = 'MKVCAST_CHILD_CONFIG';

/** A child's config, read once; taken out of the environment so that nothing it spawns (ffmpeg) inherits it. */
export function childConfig<T>(): T {
  const text = process.env[CHILD_CONFIG_ENV] ?? '{}';
  delete process.env[CHILD_CONFIG_ENV];
  return JSON.parse(text) as T;
}
