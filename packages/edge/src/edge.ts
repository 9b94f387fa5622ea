import type { Socket } from 'node:net';
import {
  describeError,
  stopReading,
  simpleResponse,
  HttpError,
  RequestHeadReader,
  type RequestHead,
  LatencyHistogram,
  type EdgeConfig,
  type EdgeStats,
  type HeaderMessage,
  type Logger,
  RefusalLog,
  type ServerStats,
  type SourceMessage,
} from '@mkvcast/shared';


import { LiveStream, type StartMode } from './liveStream.js';
import { Player, type AccessRecord, type PlayerClient, type PlayerCounters } from './player.js';
import { SendBufferCap } from './sendBuffer.js';
import { SourceLink } from './sourceLink.js';
import { statusPage } from './statusPage.js';

/** A client has this long to send its request head. */
const HEAD_TIMEOUT_MS = 10_000;
const STREAM_PATH = /^\/live\/([^/]+?)(?:\.(?:mkv|webm))?$/;
const STREAM_METHODS = 'GET, HEAD, PUT, POST';

type Route =
  | { kind: 'status' }
  | { kind: 'stats' }
  | { kind: 'list' }
  | { kind: 'publish' }
  | { kind: 'play'; stream: LiveStream | string };

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
  /** A publisher's upload: pass the connection to the source, with the bytes read. */
  publish(socket: Socket, received: Buffer): void;
}

/** A request read from a connection, with what is needed to pass it on. */
interface Request {
  socket: Socket;
  head: RequestHead;
  /** Every byte read from the socket so far. */
  received: Buffer;
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
  client: PlayerClient;
  since: number;
}

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
  readonly #config: EdgeConfig;
  readonly #log: Logger;
  readonly #events: EdgeEvents;
  readonly #link: SourceLink;
  readonly #streams = new Map<string, LiveStream>();
  readonly #sockets = new Set<Socket>();
  readonly #counters: PlayerCounters = { skips: 0, kicked: 0, bytesOut: 0, latency: new LatencyHistogram() };
  #received = 0;
  #level = { least: 0, margin: Infinity };
  /** Resolves once the source link is up for the first time. */
  readonly connected: Promise<void>;
  #rejected = 0;
  #players = 0;
  #serverStats: ServerStats | null = null;
  readonly #waiting = new Map<string, Set<Waiting>>();
  /** Streams the master waits on: it hears stream-done once each has no players left. */
  readonly #draining = new Set<string>();
  /** Ended streams whose players are still taking the last bytes. */
  readonly #ending = new Set<LiveStream>();
  readonly #sendBuffer: SendBufferCap;
  readonly #refusals: RefusalLog;
  /** Leveling hand-backs not yet sent (see MAX_LEVELING). */
  #leveling = 0;

  constructor(config: EdgeConfig, log: Logger, events: EdgeEvents) {
    this.#config = config;
    this.#log = log;
    this.#events = events;
    this.#sendBuffer = new SendBufferCap(PLAYER_SEND_BUFFER, log);
    this.#refusals = new RefusalLog(log);
    this.#link = new SourceLink(config.socketPath, config.edgeId, log, () => this.#resumePoints());
    this.#link.on('message', (message) => this.#onSourceMessage(message));
    this.connected = new Promise((resolve) => this.#link.once('connected', resolve));
  }

  start(): void {
    this.#link.connect();
  }

  /** From the master: the least-loaded edge's players, and how far above it this edge may go. */
  level(least: number, margin: number): void {
    this.#level = { least, margin };
  }

  set serverStats(stats: ServerStats) {
    this.#serverStats = stats;
  }

  stats(): EdgeStats {
    const playersByStream: Record<string, number> = {};
    for (const stream of this.#streams.values()) playersByStream[stream.name] = stream.players.size;
    return {
      type: 'edge-stats',
      players: this.#players,
      playersByStream,
      bytesOut: this.#counters.bytesOut,
      skips: this.#counters.skips,
      kicked: this.#counters.kicked,
      rejected: this.#rejected,
      latency: { counts: this.#counters.latency.counts, max: this.#counters.latency.max },
    };
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
      this.#route({ socket, head: parsed.head, received: reader.received, tried, handedOver: handoff !== undefined });
    };
    socket.on('data', onData);
    if (received) onData(received);
    socket.resume();
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
        case 'stats':
          return this.#send(socket, 200, JSON.stringify(this.#statsBody()), 'application/json', {}, head.method !== 'HEAD');
        case 'list':
          return this.#send(socket, 200, JSON.stringify(this.#listing()), 'application/json', {}, head.method !== 'HEAD');
        case 'publish': {
          // The source ingests uploads: the master passes the connection on, with every byte read.
          return this.#events.publish(socket, Buffer.concat([request.received, ...stopReading(socket)]));
        }
        case 'play':
          return this.#play(request, route.stream);
      }
    } catch (err) {
      this.#fail(socket, err, head);
    }
  }

  /** What a request is for; throws the HttpError that answers it. */
  #routeFor(head: RequestHead): Route {
    const { method, path } = head;
    const match = STREAM_PATH.exec(path);
    if (match) {
      if (method === 'PUT' || method === 'POST') return { kind: 'publish' };
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', 'use GET or HEAD to play, PUT or POST to publish', { Allow: STREAM_METHODS });
      return { kind: 'play', stream: this.#stream(match[1]!) };
    }
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError('MKV_ERR_METHOD_NOT_ALLOWED', 'use GET or HEAD', { Allow: 'GET, HEAD' });
    if (path === '/stats') return { kind: 'stats' };
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

  /** A live stream, or the name of a configured one that has not started yet. */
  #stream(name: string): LiveStream | string {
    const stream = this.#streams.get(name);
    if (stream) return stream;
    if (this.#config.streams.includes(name)) return name;
    throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `no live stream named '${name}'`);
  }

  #play(request: Request, stream: LiveStream | string): void {
    const { socket, head } = request;
    if (head.method === 'HEAD' && typeof stream !== 'string') {
      socket.end(stream.responseHead);
      return;
    }
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
      throw new HttpError('MKV_ERR_SERVER_FULL', 'all player slots are in use', { 'Retry-After': '5' });
    }
    const start = this.#startMode(head);
    const client: PlayerClient = {
      ip: socket.remoteAddress ?? '?',
      stream: typeof stream === 'string' ? stream : stream.name,
      path: head.path,
      userAgent: head.headers.get('user-agent') ?? '',
    };
    if (typeof stream === 'string') this.#wait(socket, stream, head.method === 'HEAD', client);
    else this.#join(socket, stream, start, client);
  }

  /** `?start=newest|next`, or the server's --start. */
  #startMode(head: RequestHead): StartMode {
    const asked = head.query.get('start');
    if (asked === null) return this.#config.startMode;
    if (asked === 'newest' || asked === 'next') return asked;
    throw new HttpError('MKV_ERR_BAD_REQUEST', `start=${asked}: use start=newest (the newest keyframe) or start=next (the next one)`);
  }

  #join(socket: Socket, stream: LiveStream, start: StartMode, client: PlayerClient): void {
    const player = new Player(
      socket,
      { backlogBytes: this.#config.playerBacklogBytes, maxLagMs: this.#config.maxLagMs, slowTimeoutMs: this.#config.slowTimeoutMs },
      this.#counters,
      client,
    );
    this.#sendBuffer.apply(socket);
    this.#players++;
    this.#reportLoad();
    socket.once('close', () => {
      this.#players--;
      this.#access(player.report());
      stream.leave(player);
      if (stream.ended && stream.players.size === 0) this.#ending.delete(stream);
      this.#reportIfDone(stream.name);
    });
    stream.join(player, start, this.#config.burstMs);
  }

  /** Holds a player (in a slot) until its configured stream starts, or for START_WAIT_MS. */
  #wait(socket: Socket, name: string, head: boolean, client: PlayerClient): void {
    let waiting = this.#waiting.get(name);
    if (!waiting) this.#waiting.set(name, (waiting = new Set()));
    const entry: Waiting = {
      socket,
      head,
      client,
      since: Date.now(),
      timer: setTimeout(() => {
        if (!waiting.delete(entry)) return;
        this.#players--;
        const text = `stream '${name}' has not started yet`;
        this.#refusals.refuse('MKV_ERR_STREAM_NOT_STARTED', `refused ${client.ip} ${client.path}: 503 ${text}`, { ...client, status: 503 });
        this.#send(socket, 503, `${text}\n`, undefined, { 'Retry-After': '2' });
      }, START_WAIT_MS),
    };
    this.#players++;
    waiting.add(entry);
    socket.once('close', () => {
      if (waiting.delete(entry)) {
        clearTimeout(entry.timer);
        this.#players--;
        // A player that gave up before its stream started: a session with no bytes.
        if (!head) this.#access({ ...client, bytes: 0, durationMs: Date.now() - entry.since, reason: 'client closed' });
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
      else this.#join(entry.socket, stream, 'next', entry.client);
    }
  }

  #sendStatus(socket: Socket, head: RequestHead): void {
    const page = statusPage(this.#streams.values(), this.#serverStats);
    this.#send(socket, 200, page, 'text/html; charset=utf-8', {}, head.method !== 'HEAD');
  }

  #statsBody(): object {
    return this.#serverStats ?? { edge: this.stats() };
  }

  /** Answers a refused request (`head`: none when the request could not be read). */
  #fail(socket: Socket, err: unknown, head?: RequestHead): void {
    if (err instanceof HttpError) {
      const ip = socket.remoteAddress ?? '?';
      const what = head ? `${head.method} ${head.path}` : 'a bad request';
      const fields = { ip, ...(head ? { method: head.method, path: head.path, userAgent: head.headers.get('user-agent') ?? '' } : {}), status: err.status };
      this.#refusals.refuse(err.code, `refused ${what} from ${ip}: ${err.status} ${err.message}`, fields);
      this.#send(socket, err.status, err.message + '\n', undefined, err.headers, head?.method !== 'HEAD');
      return;
    }
    this.#log.error(`request failed: ${describeError(err)}`);
    this.#send(socket, 500, 'internal error\n');
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
        return;
      }
      case 'end':
        return this.#endStream(message.stream, message.reason === 'error' ? message.message : undefined);
    }
  }

  #onHeader(header: HeaderMessage): void {
    const stream = this.#streams.get(header.stream);
    if (!stream) {
      const live = new LiveStream(header, { maxAgeMs: this.#config.bufferMs, maxBytes: this.#config.bufferBytes, maxDelayMs: this.#config.maxDelayMs });
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
