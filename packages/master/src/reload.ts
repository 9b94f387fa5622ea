import { isDeepStrictEqual } from 'node:util';
import type { ErrorCode, InputConfig } from '@mkvcast/shared/control-plane';
import type { MasterOptions } from './master.js';

/** What a reload did, or why it did nothing. */
export type ReloadResult = ReloadDone | ReloadRefused;

export interface ReloadDone {
  ok: true;
  /** Streams started, ended, and whose input changed (their players stay). */
  added: string[];
  removed: string[];
  replaced: string[];
  /** Options now in force with a new value (config keys: `clientsPerEdge`, `publishKey`…). */
  changed: string[];
  /** Options whose new value waits for a restart of the server (`port`, `host`); the old one stays. */
  needsRestart: string[];
  /** Edge processes before and after. */
  edges: { from: number; to: number };
}

export interface ReloadRefused {
  ok: false;
  /** MKV_ERR_CONFIG (the file), MKV_ERR_USAGE (an option), MKV_ERR_RELOAD (the server cannot reload now). */
  code: ErrorCode;
  /** One line: `mkvcast.yaml:7: streams.cam.loop must be true or false, not "yes"`. */
  error: string;
}

/** Options a running server cannot take up: the public socket is bound, the loggers are made. */
export const RESTART_ONLY: readonly (keyof MasterOptions)[] = ['host', 'port', 'logLevel', 'logFormat'];

/** MasterOptions field → config key, where they differ. */
const KEY_OF: Partial<Record<keyof MasterOptions, string>> = {
  graceMs: 'grace',
  idleTimeoutMs: 'idleTimeout',
  bufferMs: 'buffer',
  bufferBytes: 'bufferMb',
  burstMs: 'burst',
  startMode: 'start',
  maxDelayMs: 'maxDelay',
  playerBacklogBytes: 'playerBacklogKb',
  maxLagMs: 'maxLag',
  slowTimeoutMs: 'slowTimeout',
  publishKeys: 'streams.*.publishKey',
};

/** Fields that are not options, or are compared stream by stream. */
const NOT_COMPARED = new Set<string>(['inputs', 'configFile']);

export interface OptionsDiff {
  added: InputConfig[];
  removed: string[];
  replaced: InputConfig[];
  changed: string[];
  needsRestart: string[];
}

/** What differs between the options in force and the ones read again. */
export function diffOptions(before: MasterOptions, after: MasterOptions): OptionsDiff {
  const old = new Map(before.inputs.map((i) => [i.name, i]));
  const next = new Map(after.inputs.map((i) => [i.name, i]));
  const diff: OptionsDiff = { added: [], removed: [], replaced: [], changed: [], needsRestart: [] };
  for (const [name, input] of next) {
    const was = old.get(name);
    if (!was) diff.added.push(input);
    else if (!isDeepStrictEqual(was, input)) diff.replaced.push(input);
  }
  for (const name of old.keys()) if (!next.has(name)) diff.removed.push(name);
  const fields = new Set([...Object.keys(before), ...Object.keys(after)]) as Set<keyof MasterOptions>;
  for (const field of fields) {
    if (NOT_COMPARED.has(field) || isDeepStrictEqual(before[field] ?? null, after[field] ?? null)) continue;
    const key = KEY_OF[field] ?? field;
    if (RESTART_ONLY.includes(field)) diff.needsRestart.push(key);
    else diff.changed.push(key);
  }
  return diff;
}
