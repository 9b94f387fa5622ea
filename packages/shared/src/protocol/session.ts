/**
 * Session messages: an edge introduces itself, the source answers with its
 * epoch. An epoch names one run of the source process; sequence numbers are
 * only comparable within one epoch.
 */
export const PROTOCOL_VERSION = 1;

/** Edge → source, first frame on a connection. */
export interface HelloMessage {
  type: 'hello';
  version: number;
  edgeId: number;
  /** Epoch the edge last saw, or null on its first connection. */
  epoch: string | null;
  /** Per stream, the last sequence number the edge holds, to resume after it. */
  resume: Record<string, number>;
}

/** Source → edge, answer to hello. */
export interface WelcomeMessage {
  type: 'welcome';
  version: number;
  epoch: string;
  /** Streams live now; an edge ends any other stream it still holds. */
  streams: string[];
}
