import type { EdgeConfig } from '@mkvcast/shared';

/** An edge's config for tests: one edge, a 10 s buffer, no stream; `changes` on top. */
export function edgeConfig(changes: Partial<EdgeConfig>): EdgeConfig {
  return {
    edgeId: 1,
    socketPath: '/nonexistent/never-connected.sock',
    clientsPerEdge: 100,
    burstMs: 0,
    startMode: 'newest',
    maxLagMs: 2000,
    bufferMs: 10_000,
    bufferBytes: 1 << 20,
    playerBacklogBytes: 1 << 20,
    slowTimeoutMs: 10_000,
    edges: 1,
    streams: [],
    defaultStream: null,
    logLevel: 'error',
    ...changes,
  };
}
