import type { Socket } from 'node:net';
import {
  describeError,
  stopReading,
  streamNameOf,
  dashPathOf,
  type DashResource,
  isLivePath,
  simpleResponse,
  errorAnswer,
  errorResponse,
  isInternal,
  HttpError,
  MkvcastError,
  RequestHeadReader,
  handedHead,
  type HandedHead,
  type RequestHead,
  LatencyHistogram,
  type EdgeConfig,
  type EdgeStats,
  type HeaderMessage,
  type Logger,
  RefusalLog,
  type ServerStats,
  type SourceMessage,
  type ApiQuery,
  type ClientInfo,
  type EdgeLoad,
  METRICS_CONTENT_TYPE,
} from '@mkvcast/shared';
import { apiRequest, isApiPath, PREFLIGHT_HEADERS, type ApiRequest } from './api.js';


import { PlayerAdmission, type PlayVisit } from './admission.js';
import { LiveStream, type StartMode } from './liveStream.js';
import { Player, type AccessRecord, type PlayerClient, type PlayerCounters, type PlayerPolicy } from './player.js';
import { SendBufferCap } from './sendBuffer.js';
import { SourceLink } from './sourceLink.js';
import { dashboardAsset, dashboardPage } from './dashboard.js';
import { dashAnswer, dashNotFound, playerAsset } from './dashHttp.js';

function policyOf(config: EdgeConfig): PlayerPolicy {
  return { backlogBytes: config.playerBacklogBytes, maxLagMs: config.maxLagMs, slowTimeoutMs: config.slowTimeoutMs };
}

/** A client has this long to send its request head. */
const HEAD_TIMEOUT_MS = 10_000;
const STREAM_METHODS = 'GET, HEAD, PUT, POST';

type Route =
  | { kind: 'status' }
  | { kind: 'asset'; body: string; type: string }
  | { kind: 'stats' }
  | { kind: 'list' }
  | { kind: 'publish' }
  | { kind: 'api'; request: ApiRequest }
  | { kind: 'play'; stream: LiveStream | string }
  | { kind: 'dash'; name: string; resource: DashResource }
  | { kind: 'response'; bytes: Buffer };

export interface EdgeEvents {
  /** Open connections changed (load reporting). */
  load(connections: number, players: number, received: number): void;
  /** Every player of an ended stream is gone. */
  streamDone(stream: string): void;
  /**
   * This edge is full: give the connection back to the master for another
   * edge, with the bytes already read from it and the edges already tried.
   */
  handBack(socket: Socket, received: Buffer, tried: number[]): void;
  /** A publisher's upload: pass the connection to the source, with its parsed head and the body bytes read. */
  publish(socket: Socket, head: HandedHead, body: Buffer): void;
  /** A Control API request (or /metrics): the master gathers the answer from every process. */
  query?(query: ApiQuery): Promise<unknown>;
}

/** A request read from a connection, with what is needed to pass it on. */
interface Request {
  socket: Socket;
  head: RequestHead;
  /** Every byte read from the socket so far. */
  received: Buffer;
  /** The bytes of it after the head: the start of a body. */
  rest: Buffer;
  /** Edges that already turned this connection away. */
  tried: number[];
  /** The master handed it over (it is not to go back). */
  handedOver: boolean;
}

/** A player waiting for a configured stream whose first Segment has not arrived yet. */
interface Waiting {
  socket: Socket;
  timer: NodeJS.Timeout;
  /** A HEAD request: it gets the headers when the stream starts, and never plays. */
  head: boolean;
  joining: Joining;
  since: number;
}

/** What a player brings to its stream: who it is (for its access line), its rebasing, and its hook visit. */
interface Joining {
  client: PlayerClient;
  /** A browser media element (see rebase.ts). */
  rebase: boolean;
  /** Admitted by the on_play hook: its on_stop follows when the player leaves. */
  visit: PlayVisit | null;
}

/** A player as the Control API lists it. */
interface Client {
  player: Player;
  stream: string;
  ip: string;
  userAgent: string;
  since: number;
}

/** Stream names whose bytes sent are remembered after their last player left (for the metrics' totals). */
const MAX_STREAM_TOTALS = 1024;

/** A player may wait this long for a configured stream to start. */
const START_WAIT_MS = 10_000;
/**
 * Kernel send buffer of a player socket. 128 KiB (256 KiB as the kernel
 * counts it) carries 10 Mbit/s over a 100 ms round trip, and hides under a
 * second of a 2 Mbit/s stream from the lag measure.
 */
const PLAYER_SEND_BUFFER = 128 * 1024;
/**
 * Leveling hand-backs queued at once. Sockets cross IPC one at a time, each after the last
 * was acknowledged: a crowd's batch would queue hundreds, each waiting behind the rest.
 */
const MAX_LEVELING = 16;

/**
 * One edge process's work: a copy of every live stream fed by the source
 * link, and the HTTP players on the sockets the master hands over.
 */
export class Edge {
  #config: EdgeConfig;
  /** Every player's limits, one object: a reload changes them for the players already in too. */
  readonly #policy: PlayerPolicy;
  /** Called once, when a retiring edge has no connection left. */
  #onIdle: (() => void) | undefined;
  readonly #log: Logger;
  readonly #events: EdgeEvents;
  readonly #link: SourceLink;
  readonly #streams = new Map<string, LiveStream>();
  /**
   * Streams holding Segments of the source's write being read. They are
   * flushed once the write is read whole: the source sends all its streams'
   * Segments of a --max-delay window in one write, and the kernel hands it
   * over in reads of 64 KiB that cut through a stream's run of Segments.
   * Flushed after each read, a player of one of 50 streams got about a fifth
   * more writes than a player of a single stream (4.9 against 4.0 a second).
   */
  readonly #unflushed = new Set<LiveStream>();
  readonly #sockets = new Set<Socket>();
  readonly #counters: PlayerCounters = { skips: 0, kicked: 0, bytesOut: 0, latency: new LatencyHistogram() };
  #received = 0;
  #level = { least: 0, margin: Infinity };
  /** Tokens and hooks: who may play. */
  readonly #admission: PlayerAdmission;
  /** Resolves once the source link is up for the first time. */
  readonly connected: Promise<void>;
  #rejected = 0;
  #players = 0;
  #serverStats: ServerStats | null = null;
  #serverStatsAt = 0;
  readonly #waiting = new Map<string, Set<Waiting>>();
  /** Streams the master waits on: it hears stream-done once each has no players left. */
  readonly #draining = new Set<string>();
  /** Ended streams whose players are still taking the last bytes. */
  readonly #ending = new Set<LiveStream>();
  readonly #sendBuffer: SendBufferCap;
  readonly #refusals: RefusalLog;
  /** Leveling hand-backs not yet sent (see MAX_LEVELING). */
  #leveling = 0;
  /** Players by id (`<edge>-<n>`), for the Control API. */
  readonly #clients = new Map<string, Client>();
  #nextClient = 0;
  /** Bytes sent to players that have left, by stream; live players' bytes are added at read time. */
  readonly #sentByStream = new Map<string, number>();
  /** Refusals by reason (metrics), and players closed by the Control API. */
  readonly #rejectedBy = new Map<string, number>();
  #apiKicks = 0;

  constructor(config: EdgeConfig, log: Logger, events: EdgeEvents) {
    this.#config = config;
    this.#policy = policyOf(config);
    this.#log = log;
    this.#events = events;
    this.#sendBuffer = new SendBufferCap(PLAYER_SEND_BUFFER, log);
    this.#admission = new PlayerAdmission(() => this.#config, log);
    this.#refusals = new RefusalLog(log);
    this.#link = new SourceLink(config.socketPath, config.edgeId, log, () => this.#resumePoints());
    this.#link.on('message', (message) => this.#onSourceMessage(message));
    this.#link.on('caughtUp', () => this.#flushStreams());
    this.connected = new Promise((resolve) => this.#link.once('connected', resolve));
  }

  start(): void {
    this.#link.connect();
  }

  /** From the master: the least-loaded edge's players, and how far above it this edge may go. */
  level(least: number, margin: number): void {
    this.#level = { least, margin };
  }

  /** The whole server's stats, sent by the master when they change; its uptime moves on here meanwhile. */
  set serverStats(stats: ServerStats) {
    this.#serverStats = stats;
    this.#serverStatsAt = Date.now();
  }

  stats(): EdgeStats {
    const playersByStream: Record<string, number> = {};
    const bytesOutByStream: Record<string, number> = {};
    for (const stream of this.#streams.values()) {
      playersByStream[stream.name] = stream.players.size;
      bytesOutByStream[stream.name] = stream.bytesOut;
    }
    return {
      type: 'edge-stats',
      players: this.#players,
      playersByStream,
      bytesOut: this.#counters.bytesOut,
      bytesOutByStream,
      skips: this.#counters.skips,
      kicked: this.#counters.kicked,
      rejected: this.#rejected,
      latency: { counts: this.#counters.latency.counts, max: this.#counters.latency.max, samples: this.#counters.latency.samples },
    };
  }

  /** Every player of this edge, for GET /api/v1/clients. */
  clients(): ClientInfo[] {
    const now = Date.now();
    return [...this.#clients].map(([id, c]) => ({
      id,
      stream: c.stream,
      edge: this.#config.edgeId,
      ip: c.ip,
      userAgent: c.userAgent,
      bytes: c.player.bytes,
      since: new Date(c.since).toISOString(),
      lagMs: c.player.lagMs(now),
    }));
  }

  /** Closes the connection of the player with this id; false when there is none here. */
  kick(id: string): boolean {
    const client = this.#clients.get(id);
    if (!client) return false;
    this.#apiKicks++;
    client.player.socket.destroy();
    return true;
  }

  /** Players per stream and open connections, now. */
  load(): EdgeLoad {
    return { playersByStream: this.stats().playersByStream, connections: this.#sockets.size };
  }

  /** What the metrics read at collect time: plain totals kept by the hot paths. */
  get totals(): {
    bytesSentByStream: Map<string, number>;
    kicks: Record<string, number>;
    skips: number;
    rejected: Map<string, number>;
    latency: LatencyHistogram;
    connections: number;
  } {
    const bytes = new Map(this.#sentByStream);
    for (const c of this.#clients.values()) bytes.set(c.stream, (bytes.get(c.stream) ?? 0) + c.player.bytes);
    return {
      bytesSentByStream: bytes,
      kicks: { slow: this.#counters.kicked, api: this.#apiKicks },
      skips: this.#counters.skips,
      rejected: this.#rejectedBy,
      latency: this.#counters.latency,
      connections: this.#sockets.size,
    };
  }

  #reject(reason: string): void {
    this.#rejectedBy.set(reason, (this.#rejectedBy.get(reason) ?? 0) + 1);
  }

  /**
   * A public connection: accepted here, or handed over by the master (then
   * with the bytes a full edge already read and the edges that tried it).
   */
  accept(socket: Socket, handoff?: { received?: Buffer; tried: number[] }): void {
    const received = handoff?.received;
    const tried = handoff?.tried ?? [];
    if (handoff) this.#received++;
    socket.allowHalfOpen = true;
    this.#sockets.add(socket);
    this.#reportLoad();
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#reportLoad();
      this.#checkIdle();
    });
    const reader = new RequestHeadReader();
    const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      let parsed;
      try {
        parsed = reader.push(chunk);
      } catch (err) {
        socket.off('data', onData);
        clearTimeout(timer);
        this.#fail(socket, err);
        return;
      }
      if (!parsed) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      this.#route({ socket, head: parsed.head, received: reader.received, rest: parsed.rest, tried, handedOver: handoff !== undefined });
    };
    socket.on('data', onData);
    if (received) onData(received);
    socket.resume();
  }

  /**
   * A reload's config: limits, keys and the stream list from now on, for the
   * players already in too. The edge's id and the source's socket stay.
   */
  configure(config: EdgeConfig): void {
    this.#config = { ...config, edgeId: this.#config.edgeId, socketPath: this.#config.socketPath };
    Object.assign(this.#policy, policyOf(config));
  }

  /** This edge was removed (fewer edges): `onIdle` once its last connection has closed. */
  retire(onIdle: () => void): void {
    this.#onIdle = onIdle;
    this.#checkIdle();
  }

  #checkIdle(): void {
    if (!this.#onIdle || this.#sockets.size > 0) return;
    const onIdle = this.#onIdle;
    this.#onIdle = undefined;
    onIdle();
  }

  /** Ends every player and the source link; their access lines are written before the process exits. */
  close(): void {
    this.#link.close();
    for (const stream of [...this.#streams.values(), ...this.#ending]) {
      for (const player of stream.players) {
        player.end('server shutdown');
        this.#access(player.report());
      }
    }
    this.#refusals.flush();
    for (const socket of this.#sockets) socket.destroy();
  }

  #route(request: Request): void {
    const { socket, head } = request;
    try {
      const route = this.#routeFor(head);
      if (route.kind !== 'publish') {
        // Whatever a player sends after its request is read and dropped.
        socket.on('data', () => undefined);
        socket.resume();
      }
      switch (route.kind) {
        case 'status':
          return this.#sendStatus(socket, head);
        case 'asset':
          return this.#send(socket, 200, route.body, route.type, {}, head.method !== 'HEAD');
        case 'stats':
          return this.#send(socket, 200, JSON.stringify(this.#statsBody()), 'application/json', {}, head.method !== 'HEAD');
        case 'list':
          return this.#send(socket, 200, JSON.stringify(this.#listing()), 'application/json', {}, head.method !== 'HEAD');
        case 'publish': {
          // The source ingests uploads: the master passes the connection on, with the head
          // parsed here (the source never reads it again) and every body byte read so far.
          const head = handedHead(request.head, request.received.length - request.rest.length);
          return this.#events.publish(socket, head, Buffer.concat([request.rest, ...stopReading(socket)]));
        }
        case 'api':
          return void this.#api(socket, head, route.request);
        case 'play':
          return this.#play(request, route.stream);
        case 'dash':
          return this.#dash(socket, head, route.name, route.resource);
        case 'response':
          return void socket.end(route.bytes);
      }
    } catch (err) {
      this.#fail(socket, err, head);
    }
  }

  /**
   * The Control API and /metrics: never a player, so never refused for want
   * of a slot. The master gathers the answer from every process.
   */
  async #api(socket: Socket, head: RequestHead, request: ApiRequest): Promise<void> {
    const withBody = head.method !== 'HEAD';
    if (request.preflight) {
      socket.end(simpleResponse(204, '', undefined, PREFLIGHT_HEADERS, false));
      return;
    }
    try {
      if (!this.#events.query) throw new HttpError('MKV_ERR_UNAVAILABLE', 'this edge has no master to ask');
      const result = await this.#events.query(request.query);
      if (request.query.kind === 'metrics') {
        this.#send(socket, 200, result as string, METRICS_CONTENT_TYPE, {}, withBody);
        return;
      }
      this.#send(socket, 200, JSON.stringify(result, null, 2) + '\n', 'application/json', {}, withBody);
    } catch (err) {
      this.#fail(socket, err, head);
    }
  }

  /** What a request is for; throws the HttpError that answers it. */
  #routeFor(head: RequestHead): Route {
    const { method, path } = head;
    if (isApiPath(path)) return { kind: 'api', request: apiRequest(head, this.#config.apiToken) };
    const dash = dashPathOf(path);
    if (dash) {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', 'use GET or HEAD', { Allow: 'GET, HEAD' });
      return { kind: 'dash', ...dash };
    }
    const name = streamNameOf(path);
    // Whatever the method: no stream can have this name, to play or to publish.
    if (name === null && isLivePath(path)) throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `no stream can be named '${path.slice('/live/'.length)}'`);
    if (name !== null) {
      if (method === 'PUT' || method === 'POST') return { kind: 'publish' };
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', 'use GET or HEAD to play, PUT or POST to publish', { Allow: STREAM_METHODS });
      return { kind: 'play', stream: this.#stream(name) };
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', 'use GET or HEAD', { Allow: 'GET, HEAD' });
    if (path === '/stats') return { kind: 'stats' };
    const asset = dashboardAsset(path);
    if (asset) return { kind: 'asset', ...asset };
    const player = playerAsset(path, head);
    if (player) return { kind: 'response', bytes: player };
    if (path === '/live/' || path === '/live') return { kind: 'list' };
    if (path === '/' || path === '/index.html') {
      const wantsHtml = (head.headers.get('accept') ?? '').includes('text/html');
      const single = this.#config.defaultStream;
      if (wantsHtml || single === null) return { kind: 'status' };
      return { kind: 'play', stream: this.#stream(single) };
    }
    throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `no such path: ${path}`);
  }

  /** Every live stream with its codecs and players (the whole server's count when known). */
  #listing(): object {
    const players = this.#serverStats?.playersByStream ?? {};
    return {
      streams: [...this.#streams.values()].map((s) => ({
        name: s.name,
        url: `/live/${encodeURIComponent(s.name)}`,
        docType: s.docType,
        tracks: s.tracks.map(({ number, type, codec }) => ({ number, type, codec })),
        players: Math.max(players[s.name] ?? 0, s.players.size),
      })),
    };
  }

  /**
   * A DASH manifest or segment: a short answer, not a player, so it takes no
   * player slot; tokens and the on_play hook admit it as they admit players.
   */
  #dash(socket: Socket, head: RequestHead, name: string, resource: DashResource): void {
    const answer = (): void => {
      const stream = this.#streams.get(name);
      if (!stream) throw dashNotFound(this.#config.streams.includes(name) ? `stream '${name}' has not started yet` : `no live stream named '${name}'`);
      socket.end(dashAnswer(stream.dash(), name, resource, head, this.#config.edgeId));
    };
    const gate = this.#admission.gate(socket, head, name);
    if (!gate) return answer();
    gate().then(
      (visit) => {
        visit?.watch(socket);
        if (socket.destroyed) return;
        try {
          answer();
        } catch (err) {
          this.#fail(socket, err, head);
        }
      },
      (err: unknown) => {
        if (!socket.destroyed) this.#fail(socket, err, head);
      },
    );
  }

  /** A live stream, or the name of a configured one that has not started yet. */
  #stream(name: string): LiveStream | string {
    const stream = this.#streams.get(name);
    if (stream) return stream;
    if (this.#config.streams.includes(name)) return name;
    throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `no live stream named '${name}'`);
  }

  #play(request: Request, stream: LiveStream | string): void {
    const { socket, head } = request;
    if (head.method === 'HEAD' && typeof stream !== 'string') return this.#admit(request, stream, 'newest', false);
    // Ahead of the least-loaded edge by the master's margin: let the master place the player
    // (back here, if this edge turns out to be the least loaded after all).
    const ahead = this.#players >= this.#level.least + this.#level.margin;
    if (ahead && !request.handedOver && head.method === 'GET' && this.#config.edges > 1 && this.#leveling < MAX_LEVELING) {
      this.#leveling++;
      socket.once('close', () => this.#leveling--);
      this.#events.handBack(socket, request.received, []);
      return;
    }
    if (this.#players >= this.#config.clientsPerEdge) {
      if (head.method === 'GET' && request.tried.length + 1 < this.#config.edges) {
        this.#events.handBack(socket, request.received, [...request.tried, this.#config.edgeId]);
        return;
      }
      this.#rejected++;
      this.#reject('server_full');
      throw new HttpError('MKV_ERR_SERVER_FULL', 'all player slots are in use', { 'Retry-After': '5' });
    }
    this.#admit(request, stream, this.#startMode(head), true);
  }

  /**
   * Checks the player's token and asks the on_play hook (when configured)
   * before any stream byte goes out, then lets it in. `slot`: it holds a
   * player slot while it waits for the answer.
   */
  #admit(request: Request, stream: LiveStream | string, start: StartMode, slot: boolean): void {
    const { socket, head } = request;
    const name = typeof stream === 'string' ? stream : stream.name;
    const gate = this.#admission.gate(socket, head, name);
    if (!gate) return this.#enter(request, stream, start, null);
    if (slot) this.#players++;
    const settled = (): void => {
      if (slot) this.#players--;
    };
    gate().then(
      (visit) => {
        settled();
        visit?.watch(socket);
        if (socket.destroyed) return;
        try {
          // The stream may have started, or ended, while the answer came.
          this.#enter(request, this.#stream(name), start, visit);
        } catch (err) {
          if (visit) visit.reason = describeError(err);
          this.#fail(socket, err, head);
        }
      },
      (err: unknown) => {
        settled();
        if (socket.destroyed) return;
        // By the code's name, as the source counts publishers: token_expired, hook_refused…
        this.#reject(err instanceof MkvcastError ? err.code.replace(/^MKV_ERR_/, '').toLowerCase() : 'internal');
        this.#fail(socket, err, head);
      },
    );
  }

  #enter(request: Request, stream: LiveStream | string, start: StartMode, visit: PlayVisit | null): void {
    const { socket, head } = request;
    const userAgent = head.headers.get('user-agent') ?? '';
    // Fetch Metadata (W3C): a browser's <video>/<audio> says so; its stream starts at 0 (see rebase.ts).
    const rebase = /^(video|audio)$/i.test(head.headers.get('sec-fetch-dest') ?? '');
    const client: PlayerClient = { ip: socket.remoteAddress ?? '?', stream: typeof stream === 'string' ? stream : stream.name, path: head.path, userAgent };
    const joining: Joining = { client, rebase, visit };
    if (head.method === 'HEAD' && typeof stream !== 'string') socket.end(stream.responseHead);
    else if (typeof stream === 'string') this.#wait(socket, stream, head.method === 'HEAD', joining);
    else this.#join(socket, stream, start, joining);
  }

  /** `?start=newest|next`, or the server's --start. */
  #startMode(head: RequestHead): StartMode {
    const asked = head.query.get('start');
    if (asked === null) return this.#config.startMode;
    if (asked === 'newest' || asked === 'next') return asked;
    throw new HttpError('MKV_ERR_BAD_REQUEST', `start=${asked}: use start=newest (the newest keyframe) or start=next (the next one)`);
  }

  #join(socket: Socket, stream: LiveStream, start: StartMode, { client, rebase, visit }: Joining): void {
    const player = new Player(socket, this.#policy, this.#counters, client, rebase);
    if (visit) visit.player = player;
    this.#sendBuffer.apply(socket);
    this.#players++;
    this.#reportLoad();
    const id = `${this.#config.edgeId}-${++this.#nextClient}`;
    this.#clients.set(id, { player, stream: stream.name, ip: socket.remoteAddress ?? '', userAgent: client.userAgent, since: Date.now() });
    socket.once('close', () => {
      this.#players--;
      this.#clients.delete(id);
      this.#addSent(stream.name, player.bytes);
      this.#access(player.report());
      stream.leave(player);
      if (stream.ended && stream.players.size === 0) this.#ending.delete(stream);
      this.#reportIfDone(stream.name);
    });
    stream.join(player, start, this.#config.burstMs);
  }

  #addSent(stream: string, bytes: number): void {
    const before = this.#sentByStream.get(stream);
    if (before === undefined && this.#sentByStream.size >= MAX_STREAM_TOTALS) {
      // Bounded: the stream longest in the map goes (its series restarts if it comes back).
      this.#sentByStream.delete(this.#sentByStream.keys().next().value!);
    }
    this.#sentByStream.set(stream, (before ?? 0) + bytes);
  }

  /** Holds a player (in a slot) until its configured stream starts, or for START_WAIT_MS. */
  #wait(socket: Socket, name: string, head: boolean, joining: Joining): void {
    let waiting = this.#waiting.get(name);
    if (!waiting) this.#waiting.set(name, (waiting = new Set()));
    const entry: Waiting = {
      socket,
      head,
      joining,
      since: Date.now(),
      timer: setTimeout(() => {
        if (!waiting.delete(entry)) return;
        this.#players--;
        if (joining.visit) joining.visit.reason = 'stream did not start';
        this.#reject('stream_not_started');
        const { client } = joining;
        const err = new HttpError('MKV_ERR_STREAM_NOT_STARTED', `stream '${name}' has not started yet`, { 'Retry-After': '2' });
        this.#refusals.refuse(err.code, `refused ${client.ip} ${client.path}: 503 ${err.message}`, { ...client, status: 503 });
        socket.end(errorResponse(err));
      }, START_WAIT_MS),
    };
    this.#players++;
    waiting.add(entry);
    socket.once('close', () => {
      if (waiting.delete(entry)) {
        clearTimeout(entry.timer);
        this.#players--;
        // A player that gave up before its stream started: a session with no bytes.
        if (!head) this.#access({ ...joining.client, bytes: 0, durationMs: Date.now() - entry.since, reason: 'client closed' });
      }
    });
  }

  /** A stream started: the players waiting for it join it, in the slots they hold. */
  #release(stream: LiveStream): void {
    const waiting = this.#waiting.get(stream.name);
    if (!waiting) return;
    this.#waiting.delete(stream.name);
    for (const entry of waiting) {
      waiting.delete(entry);
      clearTimeout(entry.timer);
      this.#players--;
      if (entry.head) entry.socket.end(stream.responseHead);
      // The stream has just started: every player waits for its first keyframe.
      else this.#join(entry.socket, stream, 'next', entry.joining);
    }
  }

  #sendStatus(socket: Socket, head: RequestHead): void {
    const page = dashboardPage(this.#streams.values());
    this.#send(socket, 200, page, 'text/html; charset=utf-8', {}, head.method !== 'HEAD');
  }

  #statsBody(): object {
    const stats = this.#serverStats;
    if (!stats) return { edge: this.stats() };
    return { ...stats, uptimeS: stats.uptimeS + Math.round((Date.now() - this.#serverStatsAt) / 1000) };
  }

  /** Answers a refused request (`head`: none when the request could not be read); refusals are logged rate-limited. */
  #fail(socket: Socket, err: unknown, head?: RequestHead): void {
    const answer = errorAnswer(err);
    if (isInternal(answer)) this.#log.error(`request failed: ${describeError(err)}`);
    else {
      const ip = socket.remoteAddress ?? '?';
      const what = head ? `${head.method} ${head.path}` : 'a bad request';
      const fields = { ip, ...(head ? { method: head.method, path: head.path, userAgent: head.headers.get('user-agent') ?? '' } : {}), status: answer.status };
      this.#refusals.refuse(answer.code, `refused ${what} from ${ip}: ${answer.status} ${answer.message}`, fields);
    }
    socket.end(errorResponse(err, { withBody: head?.method !== 'HEAD' }));
  }

  #send(
    socket: Socket,
    status: number,
    body: string,
    contentType?: string,
    headers: Record<string, string> = {},
    withBody = true,
  ): void {
    socket.end(simpleResponse(status, body, contentType, headers, withBody));
  }

  #onSourceMessage(message: SourceMessage): void {
    switch (message.type) {
      case 'welcome':
        for (const name of [...this.#streams.keys()]) {
          if (!message.streams.includes(name)) this.#endStream(name, 'gone from the source');
        }
        return;
      case 'header':
        return this.#onHeader(message);
      case 'segment': {
        const stream = this.#streams.get(message.stream);
        if (!stream) return;
        stream.push(message);
        this.#unflushed.add(stream);
        return;
      }
      case 'end':
        return this.#endStream(message.stream, message.reason === 'error' ? message.message : undefined);
    }
  }

  #flushStreams(): void {
    if (this.#unflushed.size === 0) return;
    for (const stream of this.#unflushed) stream.flush();
    this.#unflushed.clear();
  }

  #onHeader(header: HeaderMessage): void {
    const stream = this.#streams.get(header.stream);
    if (!stream) {
      const live = new LiveStream(header, { maxAgeMs: this.#config.bufferMs, maxBytes: this.#config.bufferBytes });
      this.#streams.set(header.stream, live);
      this.#release(live);
      return;
    }
    const stale = stream.replaceHeader(header);
    if (stale.length > 0) this.#log.info(`stream '${header.stream}' changed codecs; restarting ${stale.length} player(s)`);
    for (const player of stale) player.finish('codecs changed');
  }

  #endStream(name: string, error?: string): void {
    const stream = this.#streams.get(name);
    if (!stream) return;
    this.#streams.delete(name);
    stream.flush();
    stream.ended = true;
    if (error) this.#log.debug(`stream '${name}' ended: ${error}`);
    // Its players take the rest before it is done (see Player.finish).
    if (stream.players.size > 0) this.#ending.add(stream);
    for (const player of stream.players) player.finish();
    this.#reportIfDone(name);
  }

  /** One line per player session, when it ends. */
  #access(record: AccessRecord | null): void {
    if (!record) return;
    const seconds = (record.durationMs / 1000).toFixed(1);
    this.#log.info(`player ${record.ip} left '${record.stream}' after ${seconds} s, ${record.bytes} bytes: ${record.reason}`, record);
  }

  /** The master waits for these streams to be over here (end of input). */
  drain(streams: string[]): void {
    for (const name of streams) {
      this.#draining.add(name);
      this.#reportIfDone(name);
    }
  }

  /** Done with a stream: not live here, and none of its players still finishing. */
  #reportIfDone(name: string): void {
    if (!this.#draining.has(name) || this.#streams.has(name)) return;
    for (const stream of this.#ending) if (stream.name === name) return;
    this.#draining.delete(name);
    this.#events.streamDone(name);
  }

  #resumePoints(): Record<string, number> {
    const resume: Record<string, number> = {};
    for (const stream of this.#streams.values()) {
      const last = stream.lastSeq;
      if (last !== undefined) resume[stream.name] = last;
    }
    return resume;
  }

  #reportLoad(): void {
    this.#events.load(this.#sockets.size, this.#players, this.#received);
  }
}
