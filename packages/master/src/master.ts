import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { HttpError, LatencyHistogram, MkvcastError, STARTUP_V8_FLAG, bufferOf, checkNodeInternals, describeError, errorResponse, stopReading, whenChanged, type TcpHandle } from '@mkvcast/shared/control-plane';
import type {
  CheckpointMessage,
  ErrorCode,
  EdgeConfig,
  EdgeStats,
  EdgeToMaster,
  HooksConfig,
  JwtConfig,
  EndedMessage,
  HandBackMessage,
  InputConfig,
  Logger,
  LogFormat,
  LogLevel,
  MasterToEdge,
  MasterToSource,
  PublishMessage,
  ServerStats,
  SourceConfig,
  SourceStats,
  SourceToMaster,
  StreamCheckpoint,
} from '@mkvcast/shared/control-plane';
import { Child } from './child.js';
import { ControlApi } from './controlApi.js';
import { diffOptions, type ReloadResult } from './reload.js';

export type { ReloadResult } from './reload.js';
import { HeldPublishers } from './heldPublishers.js';
import { bindPublicSocket, listenBacklog } from './listenHandle.js';
import { StreamStatsTracker } from './streamStats.js';

export interface MasterOptions {
  inputs: InputConfig[];
  publishKey: string | null;
  /** Per stream, the key its publishers give instead of publishKey. */
  publishKeys?: Record<string, string>;
  /** The config file the options were read from: reload() reads it again. */
  configFile?: string | null;
  ffmpeg: string | null;
  graceMs: number;
  idleTimeoutMs: number;
  maxPublished: number;
  edges: number;
  clientsPerEdge: number;
  host: string;
  port: number;
  bufferMs: number;
  bufferBytes: number;
  burstMs: number;
  startMode: 'newest' | 'next';
  maxDelayMs: number;
  playerBacklogBytes: number;
  maxLagMs: number;
  slowTimeoutMs: number;
  logLevel: LogLevel;
  /** The Control API and /metrics need this bearer token; null or absent: open. */
  apiToken?: string | null;
  /** HTTP hooks on publish, unpublish, play, stop; absent: none. */
  hooks?: HooksConfig;
  /** Play and publish tokens; absent: none needed. */
  jwt?: JwtConfig;
  logFormat: LogFormat;
}

const STATS_INTERVAL_MS = 1000;
/** The source's and the edges' young generation: 2 MB a half (V8's default grows to 16). */
const YOUNG_GENERATION_FLAG = '--max-semi-space-size=2';
/** A reload waits this long for new edges to listen before it answers. */
const EDGE_START_WAIT_MS = 20_000;
const EDGE_BACKLOG_BYTES = 64 * 1024 * 1024;
/** Hand-offs on their way to one edge past which the edges stop leveling (see #level). */
const HANDOFF_BACKLOG = 16;
/** No edge (or no source, for an upload) can take a connection now: the same answer, CORS header included, as every other. */
const UNAVAILABLE = errorResponse(new HttpError('MKV_ERR_UNAVAILABLE', 'the server is restarting a process; try again', { 'Retry-After': '2' }));
/** Publishers held while the source restarts: at most this many, this long each. */
const HELD_PUBLISHERS = 64;
const HELD_PUBLISHER_MS = 10_000;

const require = createRequire(import.meta.url);

type SourceChild = Child<SourceToMaster, MasterToSource>;
type EdgeChild = Child<EdgeToMaster, MasterToEdge>;

/** A child failed to start again and again: the server cannot run. */
export class StartError extends MkvcastError {
  constructor(message: string) {
    super('MKV_ERR_START', message);
  }
}

interface EdgeSlot {
  /** Never reused: an edge retiring after a shrink keeps its id while a new one starts. */
  edgeId: number;
  child: EdgeChild;
  /** Sockets handed over, in total. */
  handed: number;
  /** The edge's last report: open connections, players, and how many handed sockets it had seen. */
  connections: number;
  players: number;

  received: number;
  stats: EdgeStats | null;
}

/**
 * The supervisor: forks the source and the edges, owns the public port and
 * hands each accepted connection to the least-loaded edge, restarts children
 * that die, aggregates stats, and shuts everything down on a signal or when
 * every input has ended and its players have been served.
 */
export class Master {
  #options: MasterOptions;
  readonly #log: Logger;
  readonly #dir: string;
  readonly #socketPath: string;
  /** Reads the options again (command line and config file), for reload(). */
  readonly #reread: (() => Promise<MasterOptions>) | undefined;
  /** Reloads run one after the other. */
  #reloading: Promise<unknown> = Promise.resolve();
  #nextEdgeId = 1;
  /** Edges removed by a reload, serving their last players. */
  readonly #retiring = new Set<EdgeSlot>();
  #listener: TcpHandle | undefined;
  /** The children were told to start: restarted ones are told at once. */
  #started = false;
  /** start() has resolved. */
  #up = false;
  /** Players on the least-loaded edge, as last sent to the edges. */
  #least = -1;
  #margin = -1;
  readonly #source: SourceChild;
  #edges: EdgeSlot[];
  /** Per live stream, what a restarted source needs to go on with it. */
  readonly #checkpoints = new Map<string, StreamCheckpoint>();
  /** Rejects when a child cannot start; start() races it. */
  readonly #failed: Promise<never>;
  #fail!: (err: StartError) => void;
  readonly #heldPublishers = new HeldPublishers<PublishMessage>(HELD_PUBLISHERS, HELD_PUBLISHER_MS, (socket) => this.#unavailable(socket));
  /** Connections answered 503 here, for the metrics. */
  #unavailableCount = 0;
  readonly #api: ControlApi;
  readonly #startedAt = Date.now();
  readonly #ended = new Map<string, boolean>();
  readonly #done = new Map<string, Set<number>>();
  #sourceStats: SourceStats | null = null;
  readonly #streamStats = new StreamStatsTracker();
  #exitCode = 0;
  #closing: Promise<number> | undefined;
  #resolveExit!: (code: number) => void;
  readonly exited: Promise<number>;

  constructor(options: MasterOptions, log: Logger, load?: () => Promise<MasterOptions>) {
    this.#options = options;
    this.#log = log;
    this.#reread = load;
    this.exited = new Promise((resolve) => (this.#resolveExit = resolve));
    this.#failed = new Promise<never>((_, reject) => (this.#fail = reject));
    this.#failed.catch(() => undefined);
    this.#dir = mkdtempSync(join(tmpdir(), 'mkvcast-'));
    this.#socketPath = join(this.#dir, 'source.sock');
    this.#source = this.#makeSource();
    this.#edges = Array.from({ length: options.edges }, () => this.#makeEdge(this.#nextEdgeId++));
    this.#api = new ControlApi({
      source: this.#source,
      edges: () => this.#edges.map((e) => ({ id: e.edgeId, child: e.child })),
      options: () => ({
        ...this.#options,
        publishKey: masked(this.#options.publishKey),
        publishKeys: Object.fromEntries(Object.keys(this.#options.publishKeys ?? {}).map((name) => [name, '(set)'])),
        apiToken: masked(this.#options.apiToken),
      }),
      startedAt: this.#startedAt,
      reload: () => this.reload(),
      unavailable: () => this.#unavailableCount,
    });
  }

  #unavailable(socket: Socket): void {
    this.#unavailableCount++;
    socket.end(UNAVAILABLE);
  }

  /**
   * Starts the children and listens; resolves with the bound address. Rejects
   * with a StartError when a child fails to start again and again.
   */
  async start(): Promise<AddressInfo> {
    // A Node without the internals the hand-offs use fails here, in one line, not at the first player.
    checkNodeInternals();
    // Bind first: a taken port fails before any child is forked.
    const { handle, address } = await bindPublicSocket(this.#options.host, this.#options.port);
    this.#listener = handle;
    this.#source.start();
    await this.#until(this.#source, 'ready');
    for (const edge of this.#edges) edge.child.start();
    await Promise.all(this.#edges.map((e) => this.#until(e.child, 'ready')));
    this.#started = true;
    // The bound socket refuses connections until an edge listens on it: wait for every edge.
    const listening = this.#edges.map((e) => this.#until(e.child, 'listening'));
    for (const edge of this.#edges) edge.child.send({ type: 'listen' }, handle);
    await Promise.all(listening);
    setInterval(() => this.#broadcastStats(), STATS_INTERVAL_MS).unref();
    this.#broadcastStats();
    this.#source.send({ type: 'start' });
    this.#up = true;
    // Said once the server is up: a failed start prints its one line and nothing else.
    const { note } = listenBacklog();
    if (note !== null) this.#log.info(note);
    return address;
  }

  /**
   * Reads the config file (and command line) again and applies it: streams
   * added, ended or given a new input, keys and limits pushed to every child,
   * edges started or retired. Players of untouched streams stay connected.
   * An invalid file changes nothing. Reloads run one at a time.
   */
  reload(): Promise<ReloadResult> {
    const run = this.#reloading.then(() => this.#reload()).catch((err: unknown): ReloadResult => {
      // A fault of ours, not of the file: said, and the next reload still runs.
      this.#log.error(`reload failed: ${describeError(err)}`);
      return { ok: false, code: 'MKV_ERR_RELOAD', error: describeError(err) };
    });
    this.#reloading = run;
    return run;
  }

  async #reload(): Promise<ReloadResult> {
    const refuse = (code: ErrorCode, error: string): ReloadResult => {
      this.#log.error(`reload refused: ${error}; the running config stays`);
      return { ok: false, code, error };
    };
    if (!this.#reread || !this.#options.configFile) return refuse('MKV_ERR_RELOAD', 'started without --config: nothing to reload');
    if (!this.#up || this.#closing) return refuse('MKV_ERR_RELOAD', 'the server is not running');
    let next: MasterOptions;
    try {
      next = await this.#reread();
    } catch (err) {
      return refuse(err instanceof MkvcastError ? err.code : 'MKV_ERR_CONFIG', describeError(err));
    }
    const before = this.#options;
    const diff = diffOptions(before, next);
    // The public socket stays bound and the loggers as they are: those wait for a restart.
    this.#options = { ...next, host: before.host, port: before.port, logLevel: before.logLevel, logFormat: before.logFormat };
    this.#applyStreams(diff.added, diff.removed, diff.replaced);
    const edgesBefore = this.#edges.length;
    for (const slot of this.#edges) slot.child.send({ type: 'configure', config: this.#edgeConfig(slot.edgeId) });
    await this.#resize(next.edges);
    const result: ReloadResult = {
      ok: true,
      added: diff.added.map((i) => i.name),
      removed: diff.removed,
      replaced: diff.replaced.map((i) => i.name),
      changed: diff.changed,
      needsRestart: diff.needsRestart,
      edges: { from: edgesBefore, to: this.#edges.length },
    };
    this.#log.info(`reloaded ${this.#options.configFile}: ${describeReload(result)}`);
    this.#broadcastStats();
    return result;
  }

  /** Tells the source its new config, then which inputs to end and start. */
  #applyStreams(added: InputConfig[], removed: string[], replaced: InputConfig[]): void {
    for (const name of removed) {
      // A source restarting now must not bring it back.
      this.#checkpoints.delete(name);
      this.#ended.delete(name);
    }
    for (const input of replaced) {
      // The old input's file position means nothing to the new one; the stream's timeline goes on.
      const checkpoint = this.#checkpoints.get(input.name);
      if (checkpoint) this.#checkpoints.set(input.name, { ...checkpoint, file: undefined });
      this.#ended.delete(input.name);
    }
    // A source that is down gets all of this from its config when it starts again.
    if (!this.#source.send({ type: 'configure', config: this.#sourceConfig() })) return;
    for (const stream of removed) this.#source.send({ type: 'end-input', stream });
    for (const input of replaced) {
      const resume = this.#checkpoints.get(input.name);
      this.#source.send({ type: 'add-input', input, ...(resume ? { resume } : {}) });
    }
    for (const input of added) this.#source.send({ type: 'add-input', input });
  }

  /**
   * More edges: forked, and listening on the public socket before this
   * resolves. Fewer: the newest stop accepting, serve the players they hold
   * until those leave, and exit.
   */
  async #resize(count: number): Promise<void> {
    const started: EdgeSlot[] = [];
    while (this.#edges.length < count) {
      const slot = this.#makeEdge(this.#nextEdgeId++);
      this.#edges.push(slot);
      started.push(slot);
      slot.child.start();
    }
    while (this.#edges.length > count) {
      const slot = this.#edges.pop()!;
      this.#retiring.add(slot);
      void slot.child.retire({ type: 'retire' }).then(() => {
        this.#retiring.delete(slot);
        this.#log.info(`edge ${slot.edgeId} retired`);
      });
    }
    // Leveling starts again over the edges there are now.
    this.#least = -1;
    if (started.length === 0) return this.#level();
    await Promise.race([
      Promise.all(started.map((slot) => new Promise<void>((resolve) => slot.child.once('listening', () => resolve())))),
      new Promise<void>((resolve) => setTimeout(resolve, EDGE_START_WAIT_MS).unref()),
    ]);
    // The busy edges learn at once that an empty one is there, and hand it their next players.
    this.#level();
  }

  /** A child's event, or the start failing. */
  #until(child: SourceChild | EdgeChild, event: 'ready' | 'listening'): Promise<void> {
    return Promise.race([new Promise<void>((resolve) => child.once(event, () => resolve())), this.#failed]);
  }

  /** Stops everything once; resolves with the exit code. */
  close(code = this.#exitCode): Promise<number> {
    this.#closing ??= (async () => {
      this.#listener?.close();
      this.#heldPublishers.close();
      this.#api.close();
      const edges = [...this.#edges, ...this.#retiring];
      await Promise.all([this.#source.stop(), ...edges.map((e) => e.child.stop())]);
      rmSync(this.#dir, { recursive: true, force: true });
      this.#resolveExit(code);
      return code;
    })();
    return this.#closing;
  }

  /** The source's config from the options in force (a reload changes them). */
  #sourceConfig(): SourceConfig {
    const o = this.#options;
    return {
      socketPath: this.#socketPath,
      inputs: o.inputs,
      bufferMs: o.bufferMs,
      bufferBytes: o.bufferBytes,
      edgeBacklogBytes: EDGE_BACKLOG_BYTES,
      maxDelayMs: o.maxDelayMs,
      // A restarted source goes on with the streams the last one left live.
      restore: [...this.#checkpoints.values()],
      publishKey: o.publishKey,
      publishKeys: o.publishKeys ?? {},
      ffmpeg: o.ffmpeg,
      graceMs: o.graceMs,
      idleTimeoutMs: o.idleTimeoutMs,
      maxPublished: o.maxPublished,
      logLevel: o.logLevel,
      ...(o.hooks ? { hooks: o.hooks } : {}),
      ...(o.jwt ? { jwt: o.jwt } : {}),
      logFormat: o.logFormat,
    };
  }

  #makeSource(): SourceChild {
    const o = this.#options;
    const child: SourceChild = new Child({
      name: 'source',
      modulePath: require.resolve('@mkvcast/source/main'),
      config: () => this.#sourceConfig(),
      stdin: o.inputs.some((i) => i.path === '-'),
      // Short-lived objects per block and piece; with many inputs V8 grew the young generation to
      // its 16 MB default (32 MB resident for both halves). With 2 MB, as the edges have, the
      // source with 50 looped files is 150 MB resident, not 180–195, at no CPU cost seen.
      execArgv: [YOUNG_GENERATION_FLAG, STARTUP_V8_FLAG],
      log: this.#log,
    });
    child.on('message', (message) => {
      switch (message.type) {
        case 'source-stats':
          this.#sourceStats = message;
          return;
        case 'checkpoint':
          return this.#onCheckpoint(message);
        case 'ended':
          return this.#onEnded(message);
        case 'answer':
          return this.#api.answer(message);
      }
    });
    child.on('fatal', (why) => this.#fatal(why));
    // A restarted source starts reading at once; the first start waits for the port.
    child.on('ready', () => {
      if (this.#started) child.send({ type: 'start' });
      this.#heldPublishers.release((socket, upload) => this.#toSource(socket, upload));
    });
    return child;
  }

  /** An edge's config from the options in force (a reload changes them). */
  #edgeConfig(edgeId: number): EdgeConfig {
    const o = this.#options;
    return {
      edgeId,
      socketPath: this.#socketPath,
      clientsPerEdge: o.clientsPerEdge,
      burstMs: o.burstMs,
      startMode: o.startMode,
      bufferMs: o.bufferMs,
      bufferBytes: o.bufferBytes,
      playerBacklogBytes: o.playerBacklogBytes,
      maxLagMs: o.maxLagMs,
      slowTimeoutMs: o.slowTimeoutMs,
      apiToken: o.apiToken ?? null,
      defaultStream: o.inputs.length === 1 ? o.inputs[0]!.name : null,
      edges: o.edges,
      streams: o.inputs.map((i) => i.name),
      logLevel: o.logLevel,
      ...(o.hooks ? { hooks: o.hooks } : {}),
      ...(o.jwt ? { jwt: o.jwt } : {}),
      logFormat: o.logFormat,
    };
  }

  #makeEdge(edgeId: number): EdgeSlot {
    const slot: EdgeSlot = {
      edgeId,
      child: new Child({
        name: `edge ${edgeId}`,
        modulePath: require.resolve('@mkvcast/edge/main'),
        config: () => this.#edgeConfig(edgeId),
        stdin: false,
        // An edge allocates little per Segment; V8's default 16 MB young generation mostly holds
        // garbage from a crowd's requests. 2 MB halves an edge's memory per player (12 → 6 KB).
        execArgv: [YOUNG_GENERATION_FLAG, STARTUP_V8_FLAG],
        log: this.#log,
      }),
      handed: 0,
      connections: 0,
      players: 0,
      received: 0,
      stats: null,
    };
    slot.child.on('ready', () => {
      // A fresh process has seen nothing yet.
      slot.handed = slot.connections = slot.players = slot.received = 0;
      slot.child.send({ type: 'cluster-stats', stats: this.stats() });
      this.#least = -1;
      // A restarted edge listens on the public socket again.
      if (this.#started) slot.child.send({ type: 'listen' }, this.#listener!);
    });
    slot.child.on('message', (message, handle) => {
      switch (message.type) {
        case 'publish':
        case 'full': {
          if (!handle) return;
          // Node starts reading a socket it receives; stop at once and pass on what it read.
          const read = stopReading(handle);
          if (message.type === 'publish') {
            // Uploads go to the source, which ingests them: the edge's head, the body bytes in order.
            const body = read.length === 0 ? message.body : Buffer.concat([bufferOf(message.body), ...read]);
            return this.#toSource(handle, { type: 'publish', head: message.head, body });
          }
          const received = Buffer.concat([bufferOf(message.received), ...read]);
          // Full until it reports again: count it as such.
          slot.players = Math.max(slot.players, this.#options.clientsPerEdge);
          return this.#dispatch(handle, { ...message, received });
        }
        case 'load':
          slot.connections = message.connections;
          slot.players = message.players;
          slot.received = message.received;
          return this.#level();
        case 'edge-stats':
          slot.stats = message;
          return;
        case 'stream-done':
          return this.#onStreamDone(edgeId, message.stream);
        case 'query':
          return this.#api.serve(slot.child, message);
        case 'answer':
          return this.#api.answer(message);
      }
    });
    slot.child.on('fatal', (why) => this.#fatal(why));
    return slot;
  }

  /** An upload for the source; held while it restarts. */
  #toSource(socket: Socket, upload: PublishMessage): void {
    if (!this.#source.send(upload, socket)) this.#heldPublishers.hold(socket, upload);
  }

  /**
   * Least-loaded edge: its players plus the connections handed to it since its
   * last report. A connection a full edge handed back skips the edges in `tried`.
   */
  #dispatch(socket: Socket, handedBack?: HandBackMessage): void {
    let best: EdgeSlot | undefined;
    let bestLoad = Infinity;
    for (const slot of this.#edges) {
      if (!slot.child.ready || handedBack?.tried.includes(slot.edgeId)) continue;
      const load = this.#load(slot);
      if (load < bestLoad) {
        best = slot;
        bestLoad = load;
      }
    }
    const message: MasterToEdge = handedBack ? { type: 'conn', received: handedBack.received, tried: handedBack.tried } : { type: 'conn' };
    if (!best || !best.child.send(message, socket)) {
      this.#unavailable(socket);
      return;
    }
    best.handed++;
  }

  #load(slot: EdgeSlot): number {
    return slot.players + (slot.handed - slot.received);
  }

  /**
   * Edges accept on the shared socket as the kernel wakes them. Each is told
   * the least-loaded edge's players; one that gets a margin ahead of it hands
   * new players back to #dispatch. That keeps the edges level without routing
   * every connection of a crowd through the master's IPC channel.
   */
  #level(): void {
    const ready = this.#edges.filter((e) => e.child.ready);
    if (ready.length === 0) return;
    const least = Math.min(...ready.map((e) => this.#load(e)));
    // Exact while edges are small; on big edges a crowd, which the kernel already spreads
    // within a few percent, stays on the fast path instead of queueing for the IPC hand-off.
    // Sockets cross IPC one at a time, each waiting for the receiver's acknowledgement: once
    // HANDOFF_BACKLOG are on their way to an edge, the next would wait behind them all (1 s at
    // p99 in a crowd of 5000), so the edges keep their players until the backlog has drained.
    const backlog = ready.some((e) => e.handed - e.received >= HANDOFF_BACKLOG);
    const margin = backlog ? this.#options.clientsPerEdge : Math.max(1, Math.floor(this.#options.clientsPerEdge / 10));
    if (least === this.#least && margin === this.#margin) return;
    this.#least = least;
    this.#margin = margin;
    for (const slot of ready) slot.child.send({ type: 'level', least, margin });
  }

  /** The header travels only when it changed: keep the one before. */
  #onCheckpoint({ type: _, header, ...state }: CheckpointMessage): void {
    const previous = this.#checkpoints.get(state.stream);
    const bytes = header ?? previous?.header;
    if (bytes !== undefined) this.#checkpoints.set(state.stream, { ...state, header: bytes });
  }

  #onEnded(ended: EndedMessage): void {
    this.#checkpoints.delete(ended.stream);
    const input = this.#options.inputs.find((i) => i.name === ended.stream);
    // Published streams come and go; only the configured inputs decide when the master is done.
    if (!input) return;
    if (ended.ok) this.#log.info(`stream '${ended.stream}' ended`);
    else {
      this.#log.error(`${input?.path === '-' ? 'stdin' : input?.path ?? ended.stream}: ${ended.message}`);
      this.#exitCode = 1;
    }
    this.#ended.set(ended.stream, ended.ok);
    if (this.#ended.size < this.#options.inputs.length) return;
    // Each edge answers once its players of these streams have every byte, or have stopped
    // taking them for --slow-timeout.
    const streams = [...this.#ended.keys()];
    for (const slot of this.#edges) slot.child.send({ type: 'drain', streams });
    this.#maybeFinish();
  }

  #onStreamDone(edgeId: number, stream: string): void {
    let edges = this.#done.get(stream);
    if (!edges) this.#done.set(stream, (edges = new Set()));
    edges.add(edgeId);
    this.#maybeFinish();
  }

  /** Every input ended and every edge has closed its players of it: exit. */
  #maybeFinish(): void {
    if (this.#ended.size < this.#options.inputs.length) return;
    for (const stream of this.#ended.keys()) {
      const done = this.#done.get(stream);
      if (!done || !this.#edges.every((e) => done.has(e.edgeId))) return;
    }
    void this.close();
  }

  /** A child cannot start: before the server is up, start() rejects; after, the master exits 1. */
  #fatal(why: string): void {
    this.#exitCode = 1;
    if (!this.#up) {
      this.#fail(new StartError(why));
      return;
    }
    this.#log.error(why);
    void this.close();
  }

  #broadcastStats(): void {
    this.#streamStats.sample(Date.now(), this.#sourceStats?.streams ?? [], this.#edges.map((e) => e.stats));
    this.#sendClusterStats(this.stats());
  }

  /** To every edge, when more than the server's uptime changed (an edge adds the time since to what it has). */
  readonly #sendClusterStats = whenChanged(
    (stats: ServerStats) => {
      for (const slot of this.#edges) slot.child.send({ type: 'cluster-stats', stats });
    },
    (stats) => JSON.stringify({ ...stats, uptimeS: 0 }),
  );

  stats(): ServerStats {
    const total: ServerStats = {
      uptimeS: Math.round((Date.now() - this.#startedAt) / 1000),
      pids: { master: process.pid, source: this.#source.pid, edges: this.#edges.map((e) => e.child.pid) },
      capacity: this.#options.edges * this.#options.clientsPerEdge,
      players: 0,
      playersByStream: {},
      bytesOut: 0,
      skips: 0,
      kicked: 0,
      rejected: 0,
      restarts: this.#source.restarts + this.#edges.reduce((n, e) => n + e.child.restarts, 0),
      latencyMs: { samples: 0, p50: 0, p99: 0, max: 0 },
      streams: this.#streamStats.streams(Date.now(), this.#sourceStats?.streams ?? [], this.#edges.map((e) => e.stats)),
      edges: this.#edges.map((e) => ({
        edgeId: e.edgeId,
        pid: e.child.pid,
        players: e.stats?.players ?? 0,
        connections: e.connections,
        restarts: e.child.restarts,
      })),
    };
    const latency = new LatencyHistogram();
    for (const { stats } of this.#edges) {
      if (!stats) continue;
      latency.add(stats.latency);
      total.players += stats.players;
      total.bytesOut += stats.bytesOut;
      total.skips += stats.skips;
      total.kicked += stats.kicked;
      total.rejected += stats.rejected;
      for (const [name, n] of Object.entries(stats.playersByStream)) {
        total.playersByStream[name] = (total.playersByStream[name] ?? 0) + n;
      }
    }
    total.latencyMs = latency.summary();
    return total;
  }
}

/** A secret shown in the options as set or not, never itself. */
function masked(secret: string | null | undefined): string | null {
  return secret ? '(set)' : null;
}

/** One line for the log: "added c; removed b; edges 1 → 2". */
function describeReload(r: ReloadResult & { ok: true }): string {
  const parts: string[] = [];
  if (r.added.length > 0) parts.push(`added ${r.added.join(', ')}`);
  if (r.removed.length > 0) parts.push(`removed ${r.removed.join(', ')}`);
  if (r.replaced.length > 0) parts.push(`new input for ${r.replaced.join(', ')}`);
  if (r.changed.length > 0) parts.push(`changed ${r.changed.join(', ')}`);
  if (r.edges.from !== r.edges.to) parts.push(`edges ${r.edges.from} → ${r.edges.to}`);
  if (r.needsRestart.length > 0) parts.push(`${r.needsRestart.join(', ')} ${r.needsRestart.length > 1 ? 'need' : 'needs'} a restart (the running value stays until then)`);
  return parts.length > 0 ? parts.join('; ') : 'nothing changed';
}

export const DEFAULT_EDGES = Math.max(1, availableParallelism());
