import type { ServerStats } from '@mkvcast/shared/control-plane';

const REFRESH_MS = 1000;

/** The status line's text: what a person watching the terminal wants at a glance. */
export function statusText(stats: ServerStats, mbitPerS: number): string {
  const up = stats.uptimeS;
  const clock = `${Math.floor(up / 3600)}:${String(Math.floor(up / 60) % 60).padStart(2, '0')}:${String(up % 60).padStart(2, '0')}`;
  const streams = stats.streams.length;
  return (
    `${streams} stream${streams === 1 ? '' : 's'} · ${stats.players}/${stats.capacity} players · ` +
    `${mbitPerS.toFixed(1)} Mbit/s out · ${stats.skips} skips · ${stats.kicked} kicks · up ${clock}`
  );
}

/**
 * A live status line at the bottom of the terminal, redrawn in place each
 * second, as ffmpeg shows its progress. Only for a terminal: the caller
 * starts it when stderr is one.
 */
export class StatusLine {
  readonly #stats: () => ServerStats;
  readonly #draw: (text: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #last: { at: number; bytesOut: number } | undefined;

  constructor(stats: () => ServerStats, draw: (text: string) => void) {
    this.#stats = stats;
    this.#draw = draw;
  }

  start(): void {
    this.#refresh();
    this.#timer = setInterval(() => this.#refresh(), REFRESH_MS).unref();
  }

  /** Removes the line (before the shell prompt comes back). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#draw('');
  }

  #refresh(): void {
    const stats = this.#stats();
    const now = Date.now();
    const last = this.#last;
    // An edge that restarted counts from 0 again: no negative rates.
    const bits = last ? Math.max(0, stats.bytesOut - last.bytesOut) * 8 : 0;
    const mbit = last && now > last.at ? bits / ((now - last.at) / 1000) / 1e6 : 0;
    this.#last = { at: now, bytesOut: stats.bytesOut };
    this.#draw(statusText(stats, mbit));
  }
}
