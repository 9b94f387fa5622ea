/**
 * One line per event on stderr: `mkvcast <role>: <text>`. Levels filter what
 * is printed; the role names the process so interleaved lines stay readable.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export class Logger {
  readonly #prefix: string;
  readonly #rank: number;

  constructor(role: string, level: LogLevel = 'info') {
    this.#prefix = `mkvcast ${role}: `;
    this.#rank = RANK[level];
  }

  error(text: string): void {
    this.#write(0, text);
  }

  warn(text: string): void {
    this.#write(1, text);
  }

  info(text: string): void {
    this.#write(2, text);
  }

  debug(text: string): void {
    this.#write(3, text);
  }

  #write(rank: number, text: string): void {
    if (rank <= this.#rank) process.stderr.write(this.#prefix + text + '\n');
  }
}

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
