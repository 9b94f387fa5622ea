import { accessSync, constants, fstatSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import { basename, delimiter, dirname, extname, join, resolve } from 'node:path';
import type { Options } from 'yargs';
import { LOG_FORMATS, LOG_LEVELS, Logger, UsageError, defaultLogFormat, describeError, isStreamName, optimizeFromNowOn, stderrSink, type InputConfig, type LogFormat, type LogLevel } from '@mkvcast/shared/control-plane';
import { ConfigError, numberProblem, readConfigFile, type ConfigFile, type NumberRule, type StreamSection } from './configFile.js';
import { DEFAULT_EDGES, Master, type MasterOptions } from './master.js';
import { hooksConfig, jwtConfig, type AccessArgs } from './access.js';
import { NeedsLayout, fullYargs, leanYargs } from './leanYargs.js';
import { StatusLine } from './statusLine.js';

/**
 * Every option, as yargs takes it. The config file's keys come from this table
 * (see configFile.ts): an option added here is a key there too.
 */
export const OPTIONS = {
  config: { type: 'string', requiresArg: true, describe: 'read options and streams from this YAML file (command-line options win); SIGHUP reloads it' },
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
    describe: 'pace the input by its timestamps (default: on for files and stdin redirected from a file, off for pipes); --no-realtime: as fast as it comes',
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
    // Writes to players are nearly all of a loaded server's CPU, and there is one per player
    // per window: 70 ms keeps write → receive p99 near 85 ms at 1 000 players with a third
    // fewer writes than 50 (docs/performance.md). --max-delay 0 is for the lowest latency.
    default: 70,
    describe: 'ms a Segment may wait to be sent with the next ones (one write per edge, then per player); 0: at once',
  },
  'player-backlog-kb': { type: 'number', requiresArg: true, default: 2048, describe: 'unsent KB past which a slow player skips ahead to the next keyframe' },
  'max-lag': { type: 'number', requiresArg: true, default: 2, describe: 'seconds a player may fall behind the live edge before it skips ahead to the next keyframe' },
  'slow-timeout': { type: 'number', requiresArg: true, default: 10, describe: 'seconds a player may stay behind before it is disconnected' },
  'log-level': { choices: LOG_LEVELS, default: 'info' as LogLevel, describe: 'how much to log' },
  'log-format': {
    choices: LOG_FORMATS,
    describe: 'log lines as JSON (one object a line) or pretty (for people); default: pretty on a terminal, JSON otherwise',
  },
  'api-token': {
    type: 'string',
    requiresArg: true,
    describe: 'bearer token the Control API (/api/v1/) and /metrics require; default: none needed',
  },
  'hooks-on-publish': { type: 'string', requiresArg: true, describe: 'URL POSTed a JSON event before a publisher is let in; anything but 2xx refuses it (403)' },
  'hooks-on-unpublish': { type: 'string', requiresArg: true, describe: 'URL POSTed a JSON event when a publisher has gone' },
  'hooks-on-play': { type: 'string', requiresArg: true, describe: 'URL POSTed a JSON event before a player is let in; anything but 2xx refuses it (403)' },
  'hooks-on-stop': { type: 'string', requiresArg: true, describe: 'URL POSTed a JSON event when a player has gone' },
  'hooks-timeout': { type: 'number', requiresArg: true, default: 3, describe: 'seconds a hook may take to answer; no answer refuses the client' },
  'jwt-secret': { type: 'string', requiresArg: true, describe: 'players need a token (?token= or Authorization: Bearer) signed HS256 with this secret' },
  'jwt-key': { type: 'string', requiresArg: true, describe: 'players need a token signed RS256 with the key of this PEM public key file' },
  'jwt-jwks': { type: 'string', requiresArg: true, describe: 'players need a token signed with a key of this JSON Web Key Set URL' },
  'jwt-claim': { type: 'string', requiresArg: true, default: 'stream', describe: 'token claim naming its stream: a name, "*", or an array of them' },
} as const satisfies Record<string, Options>;

/** The range of each numeric option, checked alike on the command line and in the config file. */
export const NUMBER_RULES: Record<string, NumberRule> = {
  edges: { min: 1, whole: true, cap: 256 },
  'clients-per-edge': { min: 1, max: 100_000, whole: true },
  port: { min: 0, max: 65535, whole: true },
  grace: { min: 0 },
  'max-published': { min: 0, max: 10_000, whole: true },
  'idle-timeout': { min: 0 },
  buffer: { min: 0 },
  'buffer-mb': { min: 0 },
  burst: { min: 0 },
  'max-delay': { min: 0, max: 10_000, whole: true },
  'player-backlog-kb': { min: 0 },
  'max-lag': { min: 0 },
  'slow-timeout': { min: 0 },
  'hooks-timeout': { min: 0.001, max: 600 },
};

const require = createRequire(import.meta.url);
export const VERSION: string = (require('../../package.json') as { version: string }).version;

function parser(yargs: Awaited<ReturnType<typeof leanYargs>>, argv: string[], file: Record<string, unknown>) {
  return yargs(argv)
    .scriptName('master')
    .usage('$0 [input | name=input ...] [options]\n\nServe Matroska/WebM streams live over HTTP to many players.\n' +
      'input: a file, - for standard input (read from a pipe when omitted), an http(s):// URL to pull,\n' +
      'tcp://host:port to listen on, or any URL ffmpeg reads (rtsp, rtmp, srt, udp, .m3u8). With no input, publishers create streams with PUT/POST /live/<name>.')
    .positional('input', { type: 'string', describe: 'file path, or - for stdin' })
    .options(OPTIONS)
    .config(file)
    .strictOptions()
    .example('$0 movie.webm', 'serve a file at /live/movie, paced in real time')
    .example('$0 movie.webm --loop --edges 2', 'repeat it forever, two edge processes')
    .example('$0 --publish-key s3cret', 'no input: publishers PUT/POST to /live/<name>?key=s3cret')
    .example('$0 cam=tcp://0.0.0.0:12345', 'listen for a raw Matroska stream (ffmpeg -f matroska tcp://…)')
    .example('$0 cam=rtsp://camera/stream', 'pull any URL ffmpeg reads (rtsp, rtmp, srt, udp, .m3u8), remuxed')
    .example('$0 obs=rtmp://0.0.0.0:1935/live/obs', 'an RTMP listener for OBS (server rtmp://host:1935/live, key obs)')
    .example('ffmpeg … -f matroska - | $0 --no-realtime', 'read standard input as fast as it comes')
    .example('$0 --config mkvcast.yaml', 'options and streams from a file (docs/mkvcast.example.yaml); kill -HUP reloads it')
    .version(VERSION)
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

/** What the user typed after --flag (or in --flag=value), for messages. */
function typed(argv: string[], flag: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${flag}`) return argv[i + 1];
    if (argv[i]!.startsWith(`--${flag}=`)) return argv[i]!.slice(flag.length + 3);
  }
  return undefined;
}

/** Each numeric option within its range: `--edges must be a whole number ≥ 1, not abc`. */
function checkNumbers(args: Record<string, unknown>, argv: string[]): void {
  for (const [flag, rule] of Object.entries(NUMBER_RULES)) {
    const value = args[flag];
    if (value === undefined) continue;
    const problem = numberProblem(value, rule);
    if (!problem) continue;
    const given = typed(argv, flag) ?? (typeof value === 'number' && !Number.isNaN(value) ? String(value) : undefined);
    throw new UsageError(`--${flag} ${problem}${given === undefined ? '' : `, not ${given}`}`);
  }
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

// rtsp, rtmp, srt, udp, rtp: read (or listened on) through ffmpeg.
const LIVE_URL = /^(https?|tcp|rtsps?|rtmp[st]?e?|rtmpts|srt|udp|rtp):\/\//i;

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
  const { name, path } = parseInput(arg, args.name, single);
  if (!isStreamName(name)) {
    const what = args.name === name ? '--name' : 'stream name';
    throw new UsageError(`${what} '${name}' may use only letters, digits and . _ ~ -`);
  }
  return makeInput(name, path, args.loop, args.realtime, true);
}

/** An input from its name and what feeds it; `loop` on a live input is refused when asked for explicitly. */
function makeInput(name: string, given: string, loop: boolean, realtime: boolean | undefined, explicitLoop: boolean): InputConfig {
  // Upstreams to fail over between, in order: http://a/live/x|http://b/live/x
  const [path, ...fallbacks] = LIVE_URL.test(given) ? given.split('|') : [given];
  const live = LIVE_URL.test(path!);
  if (live) [path!, ...fallbacks].forEach(checkUrl);
  else checkReadable(path!);
  // Every URL of a fail-over list is pulled by the upstream input, which speaks only http(s).
  if (fallbacks.length > 0 && ![path!, ...fallbacks].every((url) => /^https?:/i.test(url))) throw new UsageError(`only http(s) inputs fail over: ${given}`);
  if (loop && explicitLoop && (path === '-' || live)) throw new UsageError(`--loop needs a file; ${path === '-' ? 'standard input' : path} cannot be repeated`);
  const paced = live ? false : realtime ?? (path !== '-' || fstatSync(0).isFile());
  return { name, path: path!, paced, loop: loop && !live && path !== '-', ...(fallbacks.length > 0 ? { fallbacks } : {}) };
}

/**
 * A config file's stream: a path relative to the file's folder, loop and
 * realtime as the top level says unless the section does.
 */
function fileInput(section: StreamSection, file: ConfigFile, args: { loop: boolean; realtime?: boolean }): InputConfig {
  const given = section.input!;
  try {
    if (given === '-') throw new UsageError('standard input can be read only when named on the command line');
    const path = LIVE_URL.test(given) ? given : resolve(dirname(file.path), given);
    return makeInput(section.name, path, section.loop ?? args.loop, section.realtime ?? args.realtime, section.loop !== undefined);
  } catch (err) {
    throw new ConfigError(`${section.where}: streams.${section.name}.input: ${describeError(err).replace(/^--loop/, 'loop')}`);
  }
}

function checkUrl(url: string): void {
  const unusable = new UsageError(`not a usable URL: ${url} (http://host/path, https://…, tcp://host:port, or a URL ffmpeg reads: rtsp://, rtmp://, srt://, udp://)`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw unusable;
  }
  if (parsed.protocol === 'tcp:' && (!parsed.port || parsed.pathname.replace('/', '') !== '')) throw unusable;
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

/** The options yargs parsed: the table's, by flag. */
type Args = Record<string, unknown> & { _: (string | number)[] };

/** The command line over `file`, parsed by the lean yargs, or by the full one when it prints help. */
async function parseArgs(argv: string[], file: Record<string, unknown> = {}): Promise<Args> {
  try {
    return (await parser(await leanYargs(), argv, file).parseAsync()) as Args;
  } catch (err) {
    if (!(err instanceof NeedsLayout)) throw err;
    return (await parser(await fullYargs(), argv, file).parseAsync()) as Args;
  }
}

/**
 * The command line, over the config file when --config names one, over the
 * defaults. Throws a UsageError (or ConfigError) whose message is one line.
 * Reading the options again (a reload) reads the file again.
 */
export async function parseOptions(argv: string[]): Promise<MasterOptions> {
  let args = await parseArgs(argv);
  const configPath = args.config as string | undefined;
  const file = configPath === undefined ? null : readConfigFile(configPath, OPTIONS, NUMBER_RULES);
  if (file) args = await parseArgs(argv, file.options);
  checkNumbers(args, argv);
  const o = args as Args & {
    name?: string;
    loop: boolean;
    realtime?: boolean;
    ffmpeg?: string | false;
    'publish-key'?: string;
    'api-token'?: string;
    'log-format'?: LogFormat;
    host: string;
    start: 'newest' | 'next';
    'log-level': LogLevel;
  } & Record<keyof typeof NUMBER_RULES, number> & AccessArgs;
  const positionals = args._.map(String);
  const fileStreams = file?.streams.filter((s) => s.input !== undefined) ?? [];
  // No input and nothing piped in (and no stream in the file): a publish-only server.
  if (positionals.length === 0 && fileStreams.length === 0 && file === null && stdinHasData()) positionals.push('-');
  const inputs = positionals.map((arg) => inputConfig(arg, o, positionals.length === 1 && fileStreams.length === 0));
  for (const section of fileStreams) inputs.push(fileInput(section, file!, o));
  const names = inputs.map((i) => i.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UsageError(`two inputs are named '${twice}'`);
  if (inputs.filter((i) => i.path === '-').length > 1) throw new UsageError('standard input can feed only one stream');
  const publishKeys: Record<string, string> = {};
  for (const section of file?.streams ?? []) if (section.publishKey !== undefined) publishKeys[section.name] = section.publishKey;
  return {
    inputs,
    publishKey: o['publish-key'] ?? null,
    publishKeys,
    configFile: configPath ?? null,
    ffmpeg: ffmpegChoice(o.ffmpeg),
    graceMs: o.grace * 1000,
    idleTimeoutMs: o['idle-timeout'] * 1000,
    maxPublished: o['max-published'],
    edges: o.edges,
    clientsPerEdge: o['clients-per-edge'],
    host: o.host,
    port: o.port,
    bufferMs: o.buffer * 1000,
    bufferBytes: o['buffer-mb'] * 1024 * 1024,
    burstMs: o.burst * 1000,
    startMode: o.start,
    maxDelayMs: o['max-delay'],
    playerBacklogBytes: o['player-backlog-kb'] * 1024,
    maxLagMs: o['max-lag'] * 1000,
    slowTimeoutMs: o['slow-timeout'] * 1000,
    logLevel: o['log-level'],
    apiToken: o['api-token'] || null,
    hooks: hooksConfig(o),
    jwt: await jwtConfig(o),
    logFormat: o['log-format'] ?? defaultLogFormat(),
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

export async function main(argv = process.argv.slice(2)): Promise<number> {
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
    // A reload reads the command line and the config file again.
    master = new Master(options, log, () => parseOptions(argv));
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
  // SIGHUP reloads the config file (as nginx and MediaMTX do); reload() logs what it did.
  process.on('SIGHUP', () => void master.reload());
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
    optimizeFromNowOn();
  } catch (err) {
    log.error(`cannot start: ${describeError(err)}`);
    await master.close(1);
    return 1;
  }
  return master.exited;
}
