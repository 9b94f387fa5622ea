import type { LogFormat, LogLevel } from './log.js';
import type { StreamCheckpoint } from './protocol/control.js';

/** One input of the source: where bytes come from and under which name they are served. */
export interface InputConfig {
  name: string;
  /** A file path, '-' for standard input, an http(s):// upstream, or tcp://host:port to listen on. */
  path: string;
  /** More upstream URLs to fail over to, in order (http inputs only). */
  fallbacks?: string[];
  /** Read in real time (files); stdin is taken as it comes. */
  paced: boolean;
  loop: boolean;
}

/** HTTP hooks (SRS, MediaMTX): URLs that hear of publishers and players; null: that hook is off. */
export interface HooksConfig {
  /** Asked before a publisher is let in: anything but a 2xx answer refuses it (403). */
  onPublish: string | null;
  /** Told when a publisher has gone. */
  onUnpublish: string | null;
  /** Asked before a player is let in: anything but a 2xx answer refuses it (403). */
  onPlay: string | null;
  /** Told when a player has gone. */
  onStop: string | null;
  /** A hook that does not answer within this long counts as a refusal, ms. */
  timeoutMs: number;
}

/** Play and publish tokens (JWT); with none of secret, publicKey, jwks set, no token is needed. */
export interface JwtConfig {
  /** HS256 shared secret. */
  secret: string | null;
  /** RS256 public key, PEM (SPKI) text: the master reads the --jwt-key file. */
  publicKey: string | null;
  /** URL of a JSON Web Key Set. */
  jwks: string | null;
  /** The claim naming the stream(s) a token is for. */
  claim: string;
}

export const NO_HOOKS: HooksConfig = { onPublish: null, onUnpublish: null, onPlay: null, onStop: null, timeoutMs: 3000 };
export const NO_JWT: JwtConfig = { secret: null, publicKey: null, jwks: null, claim: 'stream' };

/** What the master hands the source process (as JSON in argv). */
export interface SourceConfig {
  socketPath: string;
  inputs: InputConfig[];
  /** Media time each stream's ring keeps, ms. */
  bufferMs: number;
  /** Bytes each stream's ring keeps at most. */
  bufferBytes: number;
  /** Bytes an edge may leave unread before the source drops its connection. */
  edgeBacklogBytes: number;
  /**
   * The latency budget, ms: what the inputs give within it goes to each edge
   * in one write, and from there to each player in one write. 0: every turn
   * of the event loop, as it arrives.
   */
  maxDelayMs: number;
  /** Publishers must give this key (Basic-auth password or ?key=); null: no key needed. */
  publishKey: string | null;
  /** Per stream name, the key its publishers must give instead of publishKey (config file `streams.<name>.publishKey`). */
  publishKeys?: Record<string, string>;
  /** A stream whose publisher or upstream left waits this long for it to return, ms. */
  graceMs: number;
  /** A publisher or upstream silent this long is cut off, ms. */
  idleTimeoutMs: number;
  /** Published streams live at once; one more publisher gets 503. */
  maxPublished: number;
  /** An ffmpeg to remux inputs in other containers (MPEG-TS, FLV, MP4); null: refuse them. */
  ffmpeg: string | null;
  logLevel: LogLevel;
  /** Default: pretty on a terminal, JSON otherwise. */
  logFormat?: LogFormat;
  /** Streams a previous run of the source left live: they go on from here. */
  restore: StreamCheckpoint[];
  /** Absent: no hooks. */
  hooks?: HooksConfig;
  /** Absent: no tokens. */
  jwt?: JwtConfig;
}

/** What the master hands each edge process. */
export interface EdgeConfig {
  edgeId: number;
  socketPath: string;
  clientsPerEdge: number;
  /** A new player starts this many ms back from the newest keyframe (0 = newest keyframe). */
  burstMs: number;
  /** Where a new player starts when it does not ask (?start=): the newest keyframe, or the next. */
  startMode: 'newest' | 'next';
  bufferMs: number;
  bufferBytes: number;
  /** Bytes a player may leave unread before it skips ahead to the next keyframe. */
  playerBacklogBytes: number;
  /** A player behind the live edge this long skips ahead to the next keyframe, ms. */
  maxLagMs: number;
  /** A player lagging this long without catching up is disconnected, ms. */
  slowTimeoutMs: number;
  /** How many edges there are: a full edge hands a player back while others remain untried. */
  edges: number;
  /** Streams the source is configured with; a player for one that has not started yet waits. */
  streams: string[];
  /** The single stream served at `GET /` to media players, when there is one input. */
  defaultStream: string | null;
  logLevel: LogLevel;
  /** The Control API and /metrics need `Authorization: Bearer <this>`; null: open. */
  apiToken?: string | null;
  /** Absent: no hooks. */
  hooks?: HooksConfig;
  /** Absent: no tokens. */
  jwt?: JwtConfig;
  /** Default: pretty on a terminal, JSON otherwise. */
  logFormat?: LogFormat;
}

/**
 * The accept queue each edge asks for on the public socket. Linux caps it at
 * net.core.somaxconn (4096 by default since 5.4); a queue too short for a
 * crowd drops SYNs, and their clients retry only after 1 s, then 3 s.
 */
export const LISTEN_BACKLOG = 65535;
