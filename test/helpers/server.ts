import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The CLI as a user runs it. */
export const MASTER_BIN = fileURLToPath(new URL('../../../packages/master/bin/master.js', import.meta.url));

export interface RunningMaster {
  proc: ChildProcess;
  port: number;
  /** Everything the server printed on stderr so far. */
  stderr: () => string;
  /** Everything its processes printed on stdout so far (with `captureStdout`; V8's traces go there). */
  stdout: () => string;
  url: (path: string) => string;
  /** Resolves with the exit code (or signal) once the master exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  /** Bytes or a stream piped to the master's stdin; default: none (stdin ignored). */
  stdin?: 'pipe';
  timeoutMs?: number;
  /** The master's environment (default: the test's), e.g. a PATH that decides which ffmpeg it finds. */
  env?: NodeJS.ProcessEnv;
  /** The port to listen on (default 0: any free one), e.g. a master restarted where its pullers look for it. */
  port?: number;
  /** Options for node itself, before the master's script (children inherit them), e.g. V8 traces. */
  nodeArgs?: string[];
  captureStdout?: boolean;
}

/** Starts `master <args> --port 0 --host 127.0.0.1` (or `options.port`) and waits for its listening line. */
export async function startMaster(args: string[], options: StartOptions = {}): Promise<RunningMaster> {
  const nodeArgs = options.nodeArgs ?? [];
  const proc = spawn(process.execPath, [...nodeArgs, MASTER_BIN, ...args, '--port', String(options.port ?? 0), '--host', '127.0.0.1'], {
    stdio: [options.stdin ?? 'ignore', options.captureStdout ? 'pipe' : 'ignore', 'pipe'],
    ...(options.env ? { env: options.env } : {}),
  });
  let stdout = '';
  proc.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`master did not start:\n${stderr}`)), options.timeoutMs ?? 20_000);
    proc.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`master exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    proc,
    port,
    stderr: () => stderr,
    stdout: () => stdout,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    exited,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Runs the master to completion (for option errors and bad inputs). */
export async function runMaster(
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [MASTER_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stderr };
}
