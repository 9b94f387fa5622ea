import { accessSync, constants, fstatSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename, delimiter, extname, join } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LOG_FORMATS, LOG_LEVELS, Logger, UsageError, defaultLogFormat, describeError, stderrSink, type InputConfig, type LogFormat, type LogLevel } from '@mkvcast/shared';
import { DEFAULT_EDGES, Master, type MasterOptions } from './master.js';
import { StatusLine } from './statusLine.js';

const NAME = /^[A-Za-z0-9._~-]{1,128}$/;

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('master')
    .usage('$0 [input | name=input ...] [options]\n\nServe Matroska/WebM streams live over HTTP to many players.\n' +
      'input: a file, - for standard input (read from a pipe when omitted), an http(s):// URL to pull,\n' +
      'or tcp://host:port to listen on. With no input, publishers create streams with PUT/POST /live/<name>.')
    .positional('input', { type: 'string', describe: 'file path, or - for stdin' })
    .options({
      edges: { type: 'number', requiresArg: true, default: DEFAULT_EDGES, describe: 'edge processes serving players (default: cores)' },
      'clients-per-edge': { type: 'number', requiresArg: true, default: 16, describe: 'players each edge serves; capacity = edges × this' },
      port: { type: 'number', requiresArg: true, default: 8080, describe: 'public HTTP port (0: any free port)' },
      host: { type: 'string', requiresArg: true, default: '0.0.0.0', describe: 'address to listen on' },
      name: { type: 'string', requiresArg: true, describe: 'stream name, served at /live/<name> (default: file name, or "live")' },
      loop: { type: 'boolean', default: false, describe: 'repeat a file forever, timestamps kept monotonic' },
      ffmpeg: {
        type: 'string',
        requiresArg: true,
        describe: 'ffmpeg used to remux MPEG-TS, FLV or MP4 inputs to Matroska (default: ffmpeg on PATH, if any; --no-ffmpeg: none, refuse them)',
      },
      'publish-key': { type: 'string', requiresArg: true, describe: 'key publishers must give (Basic-auth password or ?key=); default: none needed' },
      grace: { type: 'number', requiresArg: true, default: 10, describe: 'seconds a stream waits for its publisher or upstream to come back; its players stay connected' },
      'max-published': { type: 'number', requiresArg: true, default: 64, describe: 'published streams live at once; the next publisher gets 503' },
      'idle-timeout': { type: 'number', requiresArg: true, default: 15, describe: 'seconds of silence after which a publisher or upstream is cut off' },
      realtime: {
        type: 'boolean',
        describe: 'pace the input by its timestamps (default: on for files and stdin redirected from a file, off for pipes)',
      },
      buffer: { type: 'number', requiresArg: true, default: 10, describe: 'seconds of recent stream each process keeps' },
      'buffer-mb': { type: 'number', requiresArg: true, default: 64, describe: 'most MB of recent stream kept per stream' },
      burst: { type: 'number', requiresArg: true, default: 0, describe: 'a new player starts this many seconds back (at a keyframe) for a fuller buffer' },
      start: {
        choices: ['newest', 'next'] as const,
        default: 'newest' as const,
        describe: 'where a new player starts: the newest keyframe (a picture at once) or the next one (at the live edge); ?start= overrides',
      },
      'max-delay': {
        type: 'number',
        requiresArg: true,
        default: 50,
        describe: 'ms a Segment may wait at an edge to be written with the next ones (one write per player); 0: at once',
      },
      'player-backlog-kb': { type: 'number', requiresArg: true, default: 2048, describe: 'unsent KB past which a slow player skips ahead to the next keyframe' },
      'max-lag': { type: 'number', requiresArg: true, default: 2, describe: 'seconds a player may fall behind the live edge before it skips ahead to the next keyframe' },
      'slow-timeout': { type: 'number', requiresArg: true, default: 10, describe: 'seconds a player may stay behind before it is disconnected' },
      'log-level': { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'how much to log' },
      'log-format': {
        choices: LOG_FORMATS,
        describe: 'log lines as JSON (one object a line) or pretty (for people); default: pretty on a terminal, JSON otherwise',
      },
    })
    .strictOptions()
    .version(false)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, err) => {
      // Parser errors arrive as `err`, validation errors as `message`: both are usage errors.
      const text = err?.message ?? message;
      const missing = /^Not enough arguments following: (.+)$/.exec(text);
      throw new UsageError(missing ? `--${missing[1]} needs a value` : text);
    });
}

function integer(value: number, name: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not ${value}`);
  }
  return value;
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new UsageError(`--${name} must be a number ≥ 0, not ${value}`);
  return value;
}

/** The first executable `name` in PATH, or null. */
function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * `--ffmpeg PATH` uses that one; `--no-ffmpeg` (which yargs turns into false) none, so that
 * inputs in other containers are refused whatever is installed; neither: the one on PATH.
 */
function ffmpegChoice(given: string | false | undefined): string | null {
  if (given === false) return null;
  if (given === '') throw new UsageError('--ffmpeg needs a path (or --no-ffmpeg for none)');
  return given ?? findOnPath('ffmpeg');
}

/** stdin is a pipe or a file (not a terminal, not closed): `cat x.mkv | master` reads it. */
function stdinHasData(): boolean {
  try {
    const stdin = fstatSync(0);
    return stdin.isFIFO() || stdin.isFile() || stdin.isSocket();
  } catch {
    return false;
  }
}

const LIVE_URL = /^(https?|tcp):\/\//i;

/** `name=input` names a stream; a bare input is named by --name, the file's name, or "live". */
function parseInput(arg: string, nameOption: string | undefined, single: boolean): { name: string; path: string } {
  const pair = /^([A-Za-z0-9._~-]+)=(.+)$/.exec(arg);
  if (pair && !LIVE_URL.test(arg)) return { name: pair[1]!, path: pair[2]! };
  if (!single) throw new UsageError(`with several inputs, name each one: name=${arg}`);
  if (nameOption) return { name: nameOption, path: arg };
  if (arg === '-' || LIVE_URL.test(arg)) return { name: 'live', path: arg };
  return { name: basename(arg, extname(arg)), path: arg };
}

function inputConfig(arg: string, args: { name?: string; loop: boolean; realtime?: boolean }, single: boolean): InputConfig {
  const { name, path: given } = parseInput(arg, args.name, single);
  // Upstreams to fail over between, in order: http://a/live/x|http://b/live/x
  const [path, ...fallbacks] = LIVE_URL.test(given) ? given.split('|') : [given];
  if (!NAME.test(name)) {
    const what = args.name === name ? '--name' : 'stream name';
    throw new UsageError(`${what} '${name}' may use only letters, digits and . _ ~ -`);
  }
  const live = LIVE_URL.test(path!);
  if (live) [path!, ...fallbacks].forEach(checkUrl);
  else checkReadable(path!);
  if (fallbacks.length > 0 && !/^https?:/i.test(path!)) throw new UsageError(`only http(s) inputs fail over: ${given}`);
  if (args.loop && (path === '-' || live)) throw new UsageError(`--loop needs a file; ${path === '-' ? 'standard input' : path} cannot be repeated`);
  const paced = live ? false : args.realtime ?? (path !== '-' || fstatSync(0).isFile());
  return { name, path: path!, paced, loop: args.loop && !live, ...(fallbacks.length > 0 ? { fallbacks } : {}) };
}

function checkUrl(url: string): void {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'tcp:' && (!parsed.port || parsed.pathname.replace('/', '') !== '')) throw new Error();
  } catch {
    throw new UsageError(`not a usable URL: ${url} (http://host/path, https://…, or tcp://host:port)`);
  }
}

function checkReadable(path: string): void {
  if (path === '-') return;
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : describeError(err)}`);
  }
  if (statSync(path).isDirectory()) throw new UsageError(`cannot read ${path}: it is a directory`);
}

export async function parseOptions(argv: string[]): Promise<MasterOptions> {
  const args = await parser(argv).parseAsync();
  const positionals = args._.map(String);
  // No input and nothing piped in: a publish-only server.
  if (positionals.length === 0 && stdinHasData()) positionals.push('-');
  const inputs = positionals.map((arg) => inputConfig(arg, args, positionals.length === 1));
  const names = inputs.map((i) => i.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UsageError(`two inputs are named '${twice}'`);
  if (inputs.filter((i) => i.path === '-').length > 1) throw new UsageError('standard input can feed only one stream');
  return {
    inputs,
    publishKey: args['publish-key'] ?? null,
    ffmpeg: ffmpegChoice(args.ffmpeg),
    graceMs: positive(args.grace, 'grace') * 1000,
    idleTimeoutMs: positive(args['idle-timeout'], 'idle-timeout') * 1000,
    maxPublished: integer(args['max-published'], 'max-published', 0, 10_000),
    edges: integer(args.edges, 'edges', 1, 64),
    clientsPerEdge: integer(args['clients-per-edge'], 'clients-per-edge', 1, 100_000),
    host: args.host,
    port: integer(args.port, 'port', 0, 65535),
    bufferMs: positive(args.buffer, 'buffer') * 1000,
    bufferBytes: positive(args['buffer-mb'], 'buffer-mb') * 1024 * 1024,
    burstMs: positive(args.burst, 'burst') * 1000,
    startMode: args.start,
    maxDelayMs: integer(args['max-delay'], 'max-delay', 0, 10_000),
    playerBacklogBytes: positive(args['player-backlog-kb'], 'player-backlog-kb') * 1024,
    maxLagMs: positive(args['max-lag'], 'max-lag') * 1000,
    slowTimeoutMs: positive(args['slow-timeout'], 'slow-timeout') * 1000,
    logLevel: args['log-level'],
    logFormat: (args['log-format'] as LogFormat | undefined) ?? defaultLogFormat(),
  };
}

function urlHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Addresses to show beside localhost for a wildcard listener: this machine's, at most this many. */
const MAX_SHOWN_ADDRESSES = 4;

/**
 * URLs a person can open: a wildcard address (0.0.0.0, ::) is no place to
 * connect to, so localhost first, then the machine's own addresses.
 */
export function openableUrls(address: string, port: number): string[] {
  if (address !== '0.0.0.0' && address !== '::') return [`http://${urlHost(address)}:${port}/`];
  const others: string[] = [];
  for (const nets of Object.values(networkInterfaces())) {
    for (const net of nets ?? []) {
      if (net.internal || (address === '0.0.0.0' && net.family !== 'IPv4')) continue;
      // Link-local IPv6 needs a zone to be opened: leave it out.
      if (net.family === 'IPv6' && net.address.startsWith('fe80:')) continue;
      others.push(`http://${urlHost(net.address)}:${port}/`);
    }
  }
  return [`http://localhost:${port}/`, ...others.slice(0, MAX_SHOWN_ADDRESSES)];
}

export async function main(argv = hideBin(process.argv)): Promise<number> {
  let options: MasterOptions;
  try {
    options = await parseOptions(argv);
  } catch (err) {
    process.stderr.write(`mkvcast: ${describeError(err)}\n`);
    return 2;
  }
  const log = new Logger('master', { level: options.logLevel, format: options.logFormat });
  let master: Master;
  try {
    master = new Master(options, log);
  } catch (err) {
    log.error(`cannot start: ${describeError(err)}`);
    return 1;
  }
  // On a terminal only: never in a service's log or a test's pipe.
  const status = stderrSink.tty ? new StatusLine(() => master.stats(), (text) => stderrSink.setStatus(text)) : null;
  void master.exited.then(() => status?.stop());
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (++signals > 1) {
      status?.stop();
      process.exit(130);
    }
    log.info(`${signal}: shutting down`);
    void master.close(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const address = await master.start();
    const [base, ...others] = openableUrls(address.address, address.port) as [string, ...string[]];
    const also = others.length > 0 ? ` (also ${others.join(' ')})` : '';
    const streams = options.inputs.map((i) => `${base}live/${i.name}`);
    const what = streams.length > 0 ? `stream: ${streams.join(' ')}` : `publish with PUT or POST to ${base}live/<name>`;
    log.info(`listening on ${base}${also} with ${options.edges} edge(s) × ${options.clientsPerEdge} players; ${what}`, {
      url: base,
      urls: [base, ...others],
      streams,
    });
    status?.start();
  } catch (err) {
    log.error(`cannot start: ${describeError(err)}`);
    await master.close(1);
    return 1;
  }
  return master.exited;
}
