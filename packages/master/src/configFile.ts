import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import type { Node, Pair } from 'yaml';
import { MkvcastError, describeError, isStreamName } from '@mkvcast/shared/control-plane';

const require = createRequire(import.meta.url);

/** yaml, loaded with the first config file: a master started without --config never pays its ~3.5 MB. */
function yaml(): typeof import('yaml') {
  return require('yaml') as typeof import('yaml');
}

/**
 * The config file (`--config mkvcast.yaml`): every command-line option as a
 * key, plus per-stream sections. Keys come from the CLI's option table, so an
 * option added there has a key at once: `--clients-per-edge` is
 * `clientsPerEdge`, and an option of a section (`--hooks-on-play`) is
 * `hooks.on_play` (a map `hooks:` holding `on_play:`).
 */

/** A bad config file: one line naming the file, the line and the key. */
export class ConfigError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_CONFIG', message);
  }
}

/** The part of a yargs option the file needs to check a value. */
export interface OptionShape {
  type?: 'string' | 'number' | 'boolean' | 'array' | 'count';
  choices?: readonly unknown[];
  describe?: string;
}

/** A numeric option's range: checked alike on the command line and in the file. */
export interface NumberRule {
  min: number;
  max?: number;
  whole?: boolean;
  /** A sanity ceiling, said only to a value above it (`--edges 100000` would fork that many processes). */
  cap?: number;
}

/** Flag prefixes that are sections in the file: `--hooks-on-play` is `hooks.on_play`. */
export const SECTIONS: readonly string[] = ['api', 'hooks', 'jwt'];

/** Options that have no key: they are about the command line itself. */
const NOT_KEYS = new Set(['config', 'help', 'version', 'h']);

/** The file key of a flag: `clients-per-edge` → `clientsPerEdge`, `hooks-on-play` → `hooks.on_play`. */
export function keyOf(flag: string): string {
  const [first, ...rest] = flag.split('-');
  if (SECTIONS.includes(first!) && rest.length > 0) return `${first}.${rest.join('_')}`;
  return flag.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Per-stream keys, and what each takes. */
export const STREAM_KEYS: Record<string, OptionShape> = {
  input: { type: 'string' },
  loop: { type: 'boolean' },
  realtime: { type: 'boolean' },
  publishKey: { type: 'string' },
};

/** One `streams.<name>` section. An entry without `input` only sets how publishers of that name are let in. */
export interface StreamSection {
  name: string;
  input?: string;
  loop?: boolean;
  realtime?: boolean;
  publishKey?: string;
  /** Where the section starts, for messages: `mkvcast.yaml:7`. */
  where: string;
}

export interface ConfigFile {
  path: string;
  /** Flag name → value, for every option the file sets. */
  options: Record<string, unknown>;
  streams: StreamSection[];
}

/** The message fragment for a number outside its rule: "must be a whole number ≥ 1". */
export function numberProblem(value: unknown, rule: NumberRule | undefined): string | null {
  const whole = rule?.whole ?? false;
  const kind = whole ? 'a whole number' : 'a number';
  const range = rule === undefined ? '' : rule.max === undefined ? ` ≥ ${rule.min}` : ` from ${rule.min} to ${rule.max}`;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!whole || Number.isInteger(value)) &&
    (rule === undefined || (value >= rule.min && (rule.max === undefined || value <= rule.max)));
  if (ok && rule?.cap !== undefined && (value as number) > rule.cap) return `must be at most ${rule.cap}`;
  return ok ? null : `must be ${kind}${range}`;
}

/** How a value reads in a message: strings quoted, as in the file. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** What is wrong with a value for an option of this shape, or null. */
function valueProblem(value: unknown, shape: OptionShape, rule: NumberRule | undefined): string | null {
  if (shape.choices) {
    return shape.choices.includes(value) ? null : `must be one of ${shape.choices.map(shown).join(', ')}, not ${shown(value)}`;
  }
  switch (shape.type) {
    case 'boolean':
      return typeof value === 'boolean' ? null : `must be true or false, not ${shown(value)}`;
    case 'number': {
      const problem = numberProblem(value, rule);
      return problem && `${problem}, not ${shown(value)}`;
    }
    case 'array':
      return Array.isArray(value) ? null : `must be a list, not ${shown(value)}`;
    default:
      if (typeof value === 'string') return null;
      if (typeof value === 'number') return `must be text, not the number ${value} (quote it: "${value}")`;
      return `must be text, not ${value === null ? 'empty' : shown(value)}`;
  }
}

/**
 * Edit distance, for "did you mean": a dozen lines, where a library would be a
 * dependency for one call.
 */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** The known key closest to `key`, when it is close enough to be a typo. */
export function suggest(key: string, known: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== null && bestDistance <= Math.max(1, Math.floor(key.length / 3)) ? best : null;
}

/**
 * Reads and checks a config file against the option table. Throws a
 * ConfigError whose message is one line: `file:line: key problem`.
 */
export function readConfigFile(path: string, table: Record<string, OptionShape>, rules: Record<string, NumberRule> = {}): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(`cannot read config ${path}: ${code === 'ENOENT' ? 'no such file' : describeError(err)}`);
  }
  return parseConfig(text, path, table, rules);
}

export function parseConfig(text: string, path: string, table: Record<string, OptionShape>, rules: Record<string, NumberRule> = {}): ConfigFile {
  const { LineCounter, isMap, isScalar, parseDocument } = yaml();
  const file = basename(path);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: Node | null | undefined): string => {
    const offset = node?.range?.[0];
    return offset === undefined ? file : `${file}:${lines.linePos(offset).line}`;
  };
  const syntax = doc.errors[0];
  if (syntax) {
    const line = lines.linePos(syntax.pos[0]).line;
    throw new ConfigError(`${file}${line ? `:${line}` : ''}: not valid YAML: ${syntax.message.split('\n')[0]}`);
  }
  const fail = (node: Node | null | undefined, message: string): never => {
    throw new ConfigError(`${at(node)}: ${message}`);
  };

  // Every key the file may use, and the flag it stands for.
  const flags = new Map<string, string>();
  for (const flag of Object.keys(table)) if (!NOT_KEYS.has(flag)) flags.set(keyOf(flag), flag);
  const topLevel = new Set(['streams']);
  for (const key of flags.keys()) topLevel.add(key.split('.')[0]!);

  const result: ConfigFile = { path, options: {}, streams: [] };
  const root = doc.contents;
  if (root === null) return result;
  if (!isMap(root)) return fail(root as Node, 'the file must be a map of keys (port: 8080, streams: …)');

  const unknown = (keyNode: Node, key: string, known: Iterable<string>): never => {
    const close = suggest(key, known);
    return fail(keyNode, `unknown key ${key}${close ? ` (did you mean ${close}?)` : ''}`);
  };
  const setOption = (key: string, keyNode: Node, valueNode: Node | null): void => {
    const flag = flags.get(key)!;
    const value = isScalar(valueNode) ? valueNode.value : valueNode === null ? null : valueNode.toJSON();
    const problem = valueProblem(value, table[flag]!, rules[flag]);
    if (problem) fail(keyNode, `${key} ${problem}`);
    result.options[flag] = value;
  };

  for (const pair of root.items as Pair<Node, Node | null>[]) {
    const key = String(isScalar(pair.key) ? pair.key.value : pair.key);
    if (key === 'streams') {
      result.streams = streamSections(pair, at, fail, unknown);
      continue;
    }
    if (!topLevel.has(key)) unknown(pair.key, key, [...topLevel, ...flags.keys()]);
    if (flags.has(key)) {
      setOption(key, pair.key, pair.value);
      continue;
    }
    // A section: a map of its snake_case keys.
    if (!isMap(pair.value)) fail(pair.key, `${key} must be a map (${key}: { … })`);
    const sectionKeys = [...flags.keys()].filter((k) => k.startsWith(`${key}.`));
    for (const inner of (pair.value as { items: Pair<Node, Node | null>[] }).items) {
      const full = `${key}.${String(isScalar(inner.key) ? inner.key.value : inner.key)}`;
      if (!flags.has(full)) unknown(inner.key, full, sectionKeys);
      setOption(full, inner.key, inner.value);
    }
  }
  return result;
}

type Fail = (node: Node | null | undefined, message: string) => never;
type Unknown = (keyNode: Node, key: string, known: Iterable<string>) => never;

function streamSections(pair: Pair<Node, Node | null>, at: (node: Node | null | undefined) => string, fail: Fail, unknown: Unknown): StreamSection[] {
  const { isMap, isScalar } = yaml();
  if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) return [];
  if (!isMap(pair.value)) fail(pair.key, 'streams must be a map of stream names (streams: { news: { input: news.webm } })');
  const sections: StreamSection[] = [];
  for (const entry of (pair.value as { items: Pair<Node, Node | null>[] }).items) {
    const name = String(isScalar(entry.key) ? entry.key.value : entry.key);
    if (!isStreamName(name)) fail(entry.key, `stream name '${name}' may use only letters, digits and . _ ~ -`);
    if (!isMap(entry.value)) fail(entry.key, `streams.${name} must be a map (${name}: { input: … })`);
    const section: StreamSection = { name, where: at(entry.key) };
    for (const inner of (entry.value as { items: Pair<Node, Node | null>[] }).items) {
      const key = String(isScalar(inner.key) ? inner.key.value : inner.key);
      const shape = STREAM_KEYS[key];
      if (!shape) unknown(inner.key, `streams.${name}.${key}`, Object.keys(STREAM_KEYS).map((k) => `streams.${name}.${k}`));
      const value = isScalar(inner.value) ? inner.value.value : inner.value === null ? null : inner.value.toJSON();
      const problem = valueProblem(value, shape!, undefined);
      if (problem) fail(inner.key, `streams.${name}.${key} ${problem}`);
      if (key === 'input' && value === '') fail(inner.key, `streams.${name}.input must name a file or URL`);
      (section as unknown as Record<string, unknown>)[key] = value;
    }
    // A key nobody checks would look like protection: a configured input's name takes no publishers,
    // and a tcp:// listener takes no key.
    if (section.input !== undefined && section.publishKey !== undefined) {
      fail(entry.key, `streams.${name} has an input and a publishKey, and nothing would check the key: a stream with an input takes no publishers, and a tcp:// listener has no way to send a key (bind it to 127.0.0.1 or firewall its port). For PUT/POST publishers, give the name a section with only a publishKey`);
    }
    if (section.input === undefined && (section.loop !== undefined || section.realtime !== undefined)) {
      fail(entry.key, `streams.${name} has loop or realtime but no input`);
    }
    if (section.input === undefined && section.publishKey === undefined) {
      fail(entry.key, `streams.${name} needs an input (or a publishKey for its publishers)`);
    }
    sections.push(section);
  }
  return sections;
}
