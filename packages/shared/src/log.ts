import { createRequire } from 'node:module';
import type { Logger as Pino, DestinationStream } from 'pino';

/**
 * Structured logs, one line per event on stderr, written by each process
 * itself (no worker thread, no routing through the master): JSON lines for
 * services and pipes, pino-pretty's one-line form on a terminal. Every line
 * carries its time, level, process (`master`, `source`, `edge-1`…) and message.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'json' | 'pretty';

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];

/** Pretty for a person at a terminal, JSON for a service manager, a pipe or a file. */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/** Where finished lines go: stderr, or a test's collector. */
export interface LogSink {
  write(line: string): void;
}

/** ANSI: back to the start of the line, erase it (a status line drawn there). */
const CLEAR_LINE = '\r\x1b[K';

/**
 * stderr, shared by every Logger of the process. On a terminal it keeps one
 * status line under the log (see setStatus): each log line first clears it,
 * then it is drawn again. Other processes on the same terminal clear it too
 * (they cannot redraw it; the master does at its next refresh).
 * process.stderr is synchronous for files, pipes and terminals on Linux, so a
 * line written just before process.exit() is not lost.
 */
class Stderr implements LogSink {
  #status = '';

  get tty(): boolean {
    return process.stderr.isTTY === true;
  }

  write(line: string): void {
    if (this.tty) process.stderr.write(CLEAR_LINE + line + this.#status);
    else process.stderr.write(line);
  }

  /** Draws (or with '' removes) the status line; only on a terminal. */
  setStatus(text: string): void {
    if (!this.tty) return;
    // A line wider than the terminal wraps, and \r would then clear only its last row.
    const columns = process.stderr.columns || 80;
    this.#status = text.length >= columns ? text.slice(0, columns - 1) : text;
    process.stderr.write(CLEAR_LINE + this.#status);
  }
}

export const stderrSink = new Stderr();

const require = createRequire(import.meta.url);

/** pino-pretty's synchronous formatter (loaded only when asked for: services never pay for it). */
function prettySink(sink: LogSink, colorize: boolean): LogSink {
  const { prettyFactory } = require('pino-pretty') as typeof import('pino-pretty');
  const pretty = prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,process',
    messageFormat: '{process}: {msg}',
    // The fields after the message, as JSON on the same line: one event, one line.
    singleLine: true,
  });
  return { write: (line) => sink.write(pretty(line)) };
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Default: stderr. */
  sink?: LogSink;
}

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class Logger {
  readonly #process: string;
  readonly #level: LogLevel;
  readonly #format: LogFormat;
  readonly #sink: LogSink;
  /** Made at the first line written (see #logger). */
  #pino: Pino | undefined;

  /** `processName`: `master`, `source`, `edge-1`. */
  constructor(processName: string, levelOrOptions: LogLevel | LoggerOptions = 'info') {
    const options = typeof levelOrOptions === 'string' ? { level: levelOrOptions } : levelOrOptions;
    this.#process = processName;
    this.#level = options.level ?? 'info';
    this.#format = options.format ?? defaultLogFormat();
    this.#sink = options.sink ?? stderrSink;
  }

  get processName(): string {
    return this.#process;
  }

  error(text: string, fields?: object): void {
    this.#write('error', text, fields);
  }

  warn(text: string, fields?: object): void {
    this.#write('warn', text, fields);
  }

  info(text: string, fields?: object): void {
    this.#write('info', text, fields);
  }

  debug(text: string, fields?: object): void {
    this.#write('debug', text, fields);
  }

  #write(level: LogLevel, text: string, fields: object | undefined): void {
    if (RANK[level] > RANK[this.#level]) return;
    const logger = this.#logger();
    if (fields) logger[level](fields, text);
    else logger[level](text);
  }

  /**
   * pino, loaded when the process first writes a line: loading it costs a
   * process about 1.9 MB, which an idle edge or source that has said nothing
   * yet does not pay (idle PSS of master, source and 2 edges: docs/operations.md).
   */
  #logger(): Pino {
    if (this.#pino) return this.#pino;
    const { pino, stdTimeFunctions } = require('pino') as typeof import('pino');
    const colorize = this.#sink === stderrSink && stderrSink.tty && !process.env.NO_COLOR;
    const destination: DestinationStream = this.#format === 'pretty' ? prettySink(this.#sink, colorize) : this.#sink;
    this.#pino = pino(
      {
        level: this.#level,
        base: { process: this.#process, pid: process.pid },
        timestamp: stdTimeFunctions.isoTime,
        // Level names, not numbers: `"level":"warn"` reads and greps as it says.
        formatters: { level: (label) => ({ level: label }) },
      },
      destination,
    );
    return this.#pino;
  }
}
