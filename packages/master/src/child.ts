import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Socket as NetSocket, type Socket } from 'node:net';
import { CHILD_CONFIG_ENV, type FailedMessage, type ListeningMessage, type Logger, type ReadyMessage } from '@mkvcast/shared/control-plane';

/** A child that has not said 'ready' within this time failed to start. */
const READY_TIMEOUT_MS = 15_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;
/** Failed starts in a row after which the master gives up. */
const MAX_FAILED_STARTS = 5;
/** A child that ran this long resets the backoff. */
const HEALTHY_AFTER_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export interface ChildOptions {
  /** Log name: 'source', 'edge 2'. */
  name: string;
  modulePath: string;
  /** The child's config (in its environment, CHILD_CONFIG_ENV), rebuilt at each (re)start. */
  config: () => object;
  /** Whether the child reads the master's standard input. */
  stdin: boolean;
  /** Node options for the child (V8 heap sizing). */
  execArgv?: string[];
  log: Logger;
}

/** The messages the supervisor handles itself, whatever the child. */
type Lifecycle = ReadyMessage | ListeningMessage | FailedMessage;

/**
 * glibc's malloc arenas in a child, unless the environment says otherwise. By default every
 * thread that mallocs (V8's helpers, libuv's pool, the source's header workers) may get an
 * arena of its own, kept after the thread is done with it: with two, a child idles 0.5–1 MB
 * smaller, and the source with one looped input 3 MB. The main thread keeps an arena to itself.
 */
const CHILD_MALLOC_ARENAS = '2';

function isLifecycle(message: { type: string }): message is Lifecycle {
  return message.type === 'ready' || message.type === 'listening' || message.type === 'failed';
}

export interface ChildEvents<In> {
  ready: [];
  /** An edge accepts on the public socket. */
  listening: [];
  message: [In, Socket | undefined];
  /** Too many failed starts in a row: the master should stop. */
  fatal: [string];
}

/**
 * Supervises one forked process. Tells a child that failed to start (exited
 * or stayed silent before 'ready') from one that died after it, restarts
 * both with backoff, gives up after repeated failed starts, and ignores the
 * exits it caused itself.
 */
export class Child<In extends { type: string }, Out extends { type: string }> extends EventEmitter<ChildEvents<In>> {
  readonly #options: ChildOptions;
  #process: ChildProcess | undefined;
  #ready = false;
  /** Some run of this child got as far as 'ready'. */
  #everReady = false;
  /** What the child said, or how it exited, when it last failed to start. */
  #lastFailure = '';
  #stopping = false;
  #failedStarts = 0;
  #restarts = 0;
  #startedAt = 0;
  #readyTimer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;

  constructor(options: ChildOptions) {
    super();
    this.#options = options;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get pid(): number | null {
    return this.#process?.pid ?? null;
  }

  get restarts(): number {
    return this.#restarts;
  }

  start(): void {
    const { modulePath, config, stdin } = this.#options;
    this.#ready = false;
    this.#startedAt = Date.now();
    const child = fork(modulePath, [], {
      env: { MALLOC_ARENA_MAX: CHILD_MALLOC_ARENAS, ...process.env, [CHILD_CONFIG_ENV]: JSON.stringify(config()) },
      execArgv: [...process.execArgv, ...(this.#options.execArgv ?? [])],
      stdio: [stdin ? 'inherit' : 'ignore', 'inherit', 'inherit', 'ipc'],
      // Structured clone, not JSON: the bytes read from a handed-off connection cross as bytes.
      serialization: 'advanced',
    });
    this.#process = child;
    child.on('message', (message: In | Lifecycle, handle: Socket | undefined) => {
      if (!isLifecycle(message)) this.emit('message', message, handle);
      else if (message.type === 'ready') this.#onReady();
      else if (message.type === 'listening') this.emit('listening');
      else this.#lastFailure = message.message;
    });
    // While stopping, a child already on its way out may refuse the shutdown message (EPIPE): ours.
    child.on('error', (err) => {
      if (!this.#stopping) this.#options.log.warn(`${this.#options.name}: ${err.message}`);
    });
    child.on('exit', (code, signal) => this.#onExit(child, code, signal));
    this.#readyTimer = setTimeout(() => {
      this.#lastFailure = `no 'ready' within ${READY_TIMEOUT_MS / 1000} s`;
      child.kill('SIGKILL');
    }, READY_TIMEOUT_MS);
  }

  /**
   * Sends a message (and a socket) if the child is up; false when it is not.
   * child.send() returning false only means its queue is long: the message
   * is still delivered, so that is not a failure.
   */
  send(message: Out, handle?: Socket | object): boolean {
    const child = this.#process;
    if (!child?.connected || !this.#ready) return false;
    // A socket is closed here once sent (keepOpen: false); a listening handle stays open.
    const keepOpen = handle !== undefined && !(handle instanceof NetSocket);
    child.send(message, handle as Socket | undefined, { keepOpen }, (err) => {
      if (err && handle instanceof NetSocket) handle.destroy();
    });
    return true;
  }

  /** Asks the child to exit, kills it after a grace period, and resolves when it is gone. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#readyTimer);
    const child = this.#process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (child.connected) child.send({ type: 'shutdown' }, () => undefined);
    else child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Asks the child to finish its work and exit by itself (an edge serving its
   * last players): no restart, no grace timer. Resolves when it is gone; a
   * child not up is stopped outright.
   */
  async retire(message: Out): Promise<void> {
    const child = this.#process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    if (!this.send(message)) return this.stop();
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  }

  #onReady(): void {
    clearTimeout(this.#readyTimer);
    this.#ready = true;
    this.#everReady = true;
    this.emit('ready');
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(this.#readyTimer);
    if (child !== this.#process || this.#stopping) return;
    const { name, log } = this.#options;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const wasReady = this.#ready;
    this.#ready = false;
    // A child that dies soon after starting counts as a failed start too.
    const healthy = wasReady && Date.now() - this.#startedAt > HEALTHY_AFTER_MS;
    this.#failedStarts = healthy ? 0 : this.#failedStarts + 1;
    const why = wasReady ? how : this.#lastFailure || how;
    this.#lastFailure = '';
    if (this.#failedStarts >= MAX_FAILED_STARTS) {
      this.emit('fatal', `${name} failed to start ${this.#failedStarts} times in a row: ${why}`);
      return;
    }
    const delay = Math.min(BACKOFF_MIN_MS * 2 ** Math.max(0, this.#failedStarts - 1), BACKOFF_MAX_MS);
    // Before any run was ready, the retries are quiet: if they all fail, the fatal line says why once.
    const say = this.#everReady ? log.warn.bind(log) : log.debug.bind(log);
    say(`${name} ${wasReady ? 'died' : 'failed to start'} (${why}); restarting in ${delay} ms`);
    this.#restarts++;
    this.#restartTimer = setTimeout(() => this.start(), delay);
  }
}
