import { setFlagsFromString } from 'node:v8';
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

/**
 * V8's optimizing compiler (TurboFan) stays off while a process starts; each
 * process turns it on with optimizeFromNowOn() once it has started. The
 * master's bin sets it for itself; the master forks its children with it.
 *
 * Why: starting, a process resolves and loads 50 to 100 modules, and Node's
 * own path helpers (fileURLToPath, path.normalize) run hot enough for V8 to
 * optimize them. The compiler's code (3.4 MB of the node binary) and its
 * working memory then stay resident in every process, for code that ran
 * once: about 5 MiB of the idle PSS of master, source and 2 edges
 * (docs/performance.md, Memory). After start, V8 optimizes hot code as always.
 */
export const STARTUP_V8_FLAG = '--no-turbofan';

/** Turns V8's optimizing compiler on (see STARTUP_V8_FLAG). */
export function optimizeFromNowOn(): void {
  setFlagsFromString('--turbofan');
}
