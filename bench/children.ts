// Every process the bench starts goes through here, so that a timeout, a signal, an exception or a
// plain exit stops them all: the bench must never leave a server or a load generator behind.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import { descendants, readProc } from './procstats.js';

/** On SIGINT/SIGTERM, how long children get to stop on their own before SIGKILL. */
const SIGNAL_GRACE_MS = 3000;

const children = new Set<ChildProcess>();
/** Processes that are not our children (an edge, a worker) but that we must not leave behind. */
const strays = new Map<number, number>();
/** Temporary directories to remove even when the bench is cut short. */
const tempDirs = new Set<string>();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** spawn() whose child is killed by killAll(). */
export function spawnTracked(cmd: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

/** Keeps the last `max` characters of a child's output lines; `onLine` sees every line. */
export function tailOutput(child: ChildProcess, max = 4000, onLine?: (line: string) => void): () => string {
  let tail = '';
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    // Read to the end, or a chatty child would block on a full pipe.
    createInterface({ input: stream }).on('line', (line) => {
      tail = (tail + line + '\n').slice(-max);
      onLine?.(line);
    });
  }
  return () => tail;
}

export function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Resolves when the child has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (!isRunning(child)) resolve();
    else child.once('exit', () => resolve());
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with whether it went on its own. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<boolean> {
  if (!isRunning(child)) return true;
  const gone = exited(child);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const clean = await Promise.race([
    gone.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
  ]);
  clearTimeout(timer);
  if (!clean) {
    child.kill('SIGKILL');
    await gone;
  }
  return clean;
}

/** Remembers a process (pid + start time) to kill at the end if it is still the same process. */
export function watchStray(pid: number): void {
  const p = readProc(pid);
  if (p !== null) strays.set(pid, p.startTicks);
}

/** SIGKILLs each remembered process that is still alive and still the one we saw; returns their names. */
export function killStrays(): string[] {
  const killed: string[] = [];
  for (const [pid, startTicks] of strays) {
    strays.delete(pid);
    const now = readProc(pid);
    // Same pid and start time: still the process we saw, not a reused pid.
    if (now === null || now.startTicks !== startTicks) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(`${now.comm} ${pid}`);
    } catch {
      // it exited in between
    }
  }
  return killed;
}

/** Removes `dir` when the bench exits, however it exits; forget() it once it is removed normally. */
export function removeOnExit(dir: string): { forget: () => void } {
  tempDirs.add(dir);
  return { forget: () => tempDirs.delete(dir) };
}

/**
 * Kills every child and everything below it (a master's source and edges would otherwise be
 * orphaned), then removes the temporary directories. Synchronous, so that it also works from a
 * process 'exit' handler.
 */
export function killAll(): void {
  for (const child of children) {
    if (child.pid !== undefined) for (const pid of descendants(child.pid)) watchStray(pid);
  }
  for (const child of children) child.kill('SIGKILL');
  killStrays();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Kills everything on exit, on SIGINT/SIGTERM, and after `hardMs` (exit code 2). */
export function installSafetyNet(hardMs: number): NodeJS.Timeout {
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // SIGTERM first, so that servers remove their own sockets and temporary files; then SIGKILL.
      for (const child of children) child.kill('SIGTERM');
      setTimeout(() => {
        killAll();
        process.exit(130);
      }, SIGNAL_GRACE_MS);
    });
  }
  const hard = setTimeout(() => {
    process.stderr.write(`bench: hard timeout after ${Math.round(hardMs / 1000)} s; killing everything\n`);
    killAll();
    process.exit(2);
  }, hardMs);
  hard.unref();
  return hard;
}
