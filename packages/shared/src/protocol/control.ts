import type { EdgeConfig, InputConfig, SourceConfig } from '../config.js';
import type { HandedHead } from '../http/handedHead.js';
import type { LatencySummary } from '../latency.js';
import type { TrackSummary } from './stream.js';
import type { AnswerMessage, ApiQuery, EdgeQuery, QueryMessage, SourceQuery } from './api.js';

/**
 * Control messages between the master and its children, over the IPC channel
 * that fork() opens (Node's 'advanced' serialization, so bytes cross as
 * bytes; sockets travel beside them as handles).
 */

export interface ReadyMessage {
  type: 'ready';
}

/**
 * Child → master, before it exits during start-up: why it could not start.
 * The master prints it once, instead of every child printing it at each retry.
 */
export interface FailedMessage {
  type: 'failed';
  message: string;
}

/** Edge → master: it accepts on the public socket now. */
export interface ListeningMessage {
  type: 'listening';
}

/** Source → master: a stream ended (the master forgets its checkpoint). */
export interface EndedMessage {
  type: 'ended';
  stream: string;
  ok: boolean;
  message?: string;
}

/** Where a stream's bytes come from now. */
export interface StreamInput {
  kind: 'file' | 'stdin' | 'upstream' | 'tcp' | 'publisher' | 'url' | 'listener';
  /** A path, URL or peer address, as the logs name it: "publisher 10.0.0.7:50312", "in.mkv (pass 3)". */
  label: string;
}

/** One stream as the source has it. */
export interface SourceStreamStats {
  name: string;
  segments: number;
  bytesIn: number;
  edges: number;
  docType: string;
  /** Its tracks, with picture size and audio format where the header gives them. */
  tracks: TrackSummary[];
  /** Its current input session; null between sessions (a publisher gone, an upstream reconnecting). */
  input: StreamInput | null;
}

export interface SourceStats {
  type: 'source-stats';
  streams: SourceStreamStats[];
  edgesDropped: number;
}

/** One stream across the server: the source's view with the edges' players and traffic. */
export interface StreamStats extends SourceStreamStats {
  players: number;
  bytesOut: number;
  /** bit/s received and sent over the last stats interval (about a second). */
  bitrateIn: number;
  bitrateOut: number;
  /** Seconds since the master first saw it live (a source restart does not reset it). */
  uptimeS: number;
}

/** Edge → master: connections and players it holds, and how many handed sockets it has seen. */
export interface LoadMessage {
  type: 'load';
  connections: number;
  players: number;
  received: number;
}

/**
 * Master → edge: the players on the least-loaded edge. An edge holding
 * `margin` or more players above that hands new players back to the master,
 * which places them on the least-loaded edge.
 */
export interface LevelMessage {
  type: 'level';
  least: number;
  margin: number;
}

export interface EdgeStats {
  type: 'edge-stats';
  players: number;
  playersByStream: Record<string, number>;
  bytesOut: number;
  /** Bytes written to the players of each live stream, since this edge started. */
  bytesOutByStream: Record<string, number>;
  skips: number;
  kicked: number;
  rejected: number;
  /** Source-to-player-socket latency histogram (LatencyHistogram counts). */
  latency: { counts: number[]; max: number; samples: number };
}

/** Edge → master: every player of a stream that ended has been closed. */
export interface StreamDoneMessage {
  type: 'stream-done';
  stream: string;
}

/**
 * Master → edge: a public connection to serve (the socket rides as the
 * handle). When another edge was full, `received` holds the bytes it already
 * read and `tried` the edges that turned it away.
 */
export interface ConnectionMessage {
  type: 'conn';
  received?: Uint8Array;
  tried?: number[];
}

/** Edge → master: full; the connection (riding as the handle) should go to another edge. */
export interface HandBackMessage {
  type: 'full';
  received: Uint8Array;
  tried: number[];
}

/** Master → edge: the inputs ended; answer stream-done for each once its players are gone. */
export interface DrainMessage {
  type: 'drain';
  streams: string[];
}

/** Master → edge: accept players on the public socket (riding as the handle). */
export interface ListenMessage {
  type: 'listen';
}

/** Master → child: finish up and exit 0. */
export interface ShutdownMessage {
  type: 'shutdown';
}

/** Master → edge: the whole server's stats, for /stats and the status page. */
export interface ClusterStatsMessage {
  type: 'cluster-stats';
  stats: ServerStats;
}

export interface ServerStats {
  uptimeS: number;
  pids: { master: number; source: number | null; edges: (number | null)[] };
  capacity: number;
  players: number;
  playersByStream: Record<string, number>;
  bytesOut: number;
  skips: number;
  kicked: number;
  rejected: number;
  restarts: number;
  /** ms from the source having a Segment to its write on the last player socket of an edge. */
  latencyMs: LatencySummary;
  streams: StreamStats[];
  /** Per edge, in edge order: its pid, players, and how often it was restarted. */
  edges: { edgeId: number; pid: number | null; players: number; connections: number; restarts: number }[];
}

/**
 * What a stream needs to go on after the source process dies: the master
 * keeps the newest one per stream and hands them to the next source run.
 */
export interface StreamCheckpoint {
  stream: string;
  /** Created by a publisher (not a configured input): a new run waits `--grace` for it to return. */
  published: boolean;
  /** The live header as the edges have it: generation, codecs and bytes (base64). */
  generation: number;
  docType: string;
  tracks: TrackSummary[];
  header: string;
  /** No Segment published so far has this sequence number or a later one (a promise, ahead of the last). */
  nextSeq: number;
  /**
   * No published media ends past lastTicks (a promise ahead of where it ends:
   * a block's time plus its duration); originTicks is the stream's first timestamp. Matroska ticks.
   */
  lastTicks: number;
  originTicks: number;
  /** A file input: the pass it is in and the byte offset of the first Cluster not yet published in full. */
  file?: { pass: number; offset: number };
  /**
   * The offset added to input timestamps in the current pass, and where that
   * pass started (output ticks): a live input back on the same timestamps
   * (an upstream) keeps the offset after a restart too.
   */
  timeline?: TimelineCheckpoint;
}

export interface TimelineCheckpoint {
  offset: number;
  passStart: number;
}

/** Source → master: a stream's checkpoint, sent before any Segment that would go past its promise. */
export interface CheckpointMessage extends Omit<StreamCheckpoint, 'header'> {
  type: 'checkpoint';
  /** Sent when the header changed; otherwise the master keeps the last one. */
  header?: string;
}

export type SourceToMaster = ReadyMessage | FailedMessage | EndedMessage | SourceStats | CheckpointMessage | AnswerMessage;
export type EdgeToMaster =
  | ReadyMessage
  | FailedMessage
  | ListeningMessage
  | LoadMessage
  | EdgeStats
  | StreamDoneMessage
  | HandBackMessage
  | PublishMessage
  | QueryMessage<ApiQuery>
  | AnswerMessage;
/** Master → source: the port is open; start reading the inputs. */
export interface StartMessage {
  type: 'start';
}

/**
 * Master → source (and edge → master): a publisher's connection riding as the
 * handle, with its request head as the edge parsed it and the body bytes read
 * so far (by the edge, then the master), in order. The source never reads the
 * head again.
 */
export interface PublishMessage {
  type: 'publish';
  head: HandedHead;
  body: Uint8Array;
}

/**
 * Master → child (reload): the child's whole new config. It applies what can
 * change while it runs (keys, limits, the stream list) and keeps the rest for
 * its next start, which gets the same config from the master.
 */
export interface ConfigureMessage<Config> {
  type: 'configure';
  config: Config;
}

/**
 * Master → source (reload): start this input. `resume` is the master's
 * checkpoint of a stream of that name still live (its input was replaced):
 * the new input goes on with its sequence numbers and timestamps.
 */
export interface AddInputMessage {
  type: 'add-input';
  input: InputConfig;
  resume?: StreamCheckpoint;
}

/** Master → source (reload): stop this input and end its stream; its players get what is left, then the end. */
export interface EndInputMessage {
  type: 'end-input';
  stream: string;
}

/** Master → edge (fewer edges): stop accepting, serve the players held until they leave, then exit 0. */
export interface RetireMessage {
  type: 'retire';
}

export type MasterToSource =
  | StartMessage
  | ShutdownMessage
  | PublishMessage
  | ConfigureMessage<SourceConfig>
  | AddInputMessage
  | EndInputMessage
  | QueryMessage<SourceQuery>;
export type MasterToEdge =
  | ConnectionMessage
  | ListenMessage
  | LevelMessage
  | ShutdownMessage
  | ClusterStatsMessage
  | DrainMessage
  | QueryMessage<EdgeQuery>
  | AnswerMessage
  | ConfigureMessage<EdgeConfig>
  | RetireMessage;

/** Bytes that crossed the IPC channel (a Uint8Array there) as a Buffer, without a copy. */
export function bufferOf(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Sends each message only when it differs from the last one sent (as JSON,
 * or by `key`). Stats go out every second; an idle server's do not change,
 * and four processes passing the same message on every second ran Node's IPC
 * and timer internals hot enough, within minutes, for V8 to wake its
 * optimizing compiler in an idle server (docs/performance.md, Memory).
 */
export function whenChanged<T>(send: (message: T) => void, key: (message: T) => string = (m) => JSON.stringify(m)): (message: T) => void {
  let last: string | undefined;
  return (message) => {
    const k = key(message);
    if (k === last) return;
    last = k;
    send(message);
  };
}
