/**
 * An edge process: forked by the master with its EdgeConfig as JSON in
 * the environment (CHILD_CONFIG_ENV). Pulls Segments from the source, takes public connections from the
 * master as socket handles, and reports load, stats and stream ends over IPC.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  childConfig,
  LISTEN_BACKLOG,
  Logger,
  PendingQueries,
  answerQuery,
  exitAtStart,
  failPoint,
  type EdgeConfig,
  type EdgeQuery,
  type EdgeToMaster,
  type MasterToEdge,
  bufferOf,
  optimizeFromNowOn,
  whenChanged,
} from '@mkvcast/shared';
import { Edge } from './edge.js';
import { edgeRegistry } from './metrics.js';

const STATS_INTERVAL_MS = 1000;
/** Load reports are coalesced: at most one per this many ms. */
const LOAD_REPORT_MS = 20;
/** Control API requests waiting on the master at once, and how long each may wait. */
const MAX_QUERIES = 64;
const QUERY_TIMEOUT_MS = 10_000;

function send(message: EdgeToMaster): void {
  if (process.connected) process.send?.(message);
}

/**
 * Node takes the handle of a socket it sends (keepOpen: false) but never emits 'close' on
 * the socket: destroy the empty shell once it has gone, so the edge forgets it and counts
 * the hand-off as done.
 */
const gone = (socket: Socket) => (): void => void socket.destroy();

function main(): void {
  const config = childConfig<EdgeConfig>();
  const log = new Logger(`edge-${config.edgeId}`, { level: config.logLevel, format: config.logFormat });
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => process.exit(0));
  failPoint('edge');

  // Load reports: the first change goes out at once, changes in the next LOAD_REPORT_MS are merged.
  let load: { connections: number; players: number; received: number } | null = null;
  let loadTimer: NodeJS.Timeout | undefined;
  const flushLoad = (): void => {
    if (!load) {
      loadTimer = undefined;
      return;
    }
    send({ type: 'load', ...load });
    load = null;
    loadTimer = setTimeout(flushLoad, LOAD_REPORT_MS);
  };
  const queries = new PendingQueries(MAX_QUERIES, QUERY_TIMEOUT_MS);
  const edge = new Edge(config, log, {
    load(connections, players, received) {
      load = { connections, players, received };
      if (!loadTimer) flushLoad();
    },
    streamDone(stream) {
      send({ type: 'stream-done', stream });
    },
    handBack(socket, received, tried) {
      if (!process.connected) return socket.destroy();
      process.send!({ type: 'full', received, tried }, socket, { keepOpen: false }, gone(socket));
    },
    publish(socket, head, body) {
      if (!process.connected) return socket.destroy();
      process.send!({ type: 'publish', head, body } satisfies EdgeToMaster, socket, { keepOpen: false }, gone(socket));
    },
    query(query) {
      return queries.ask(`the master (${query.kind})`, (id) => {
        if (!process.connected) return false;
        send({ type: 'query', id, query });
        return true;
      });
    },
  });
  const metrics = edgeRegistry(edge);
  const answer = (query: EdgeQuery): unknown => {
    switch (query.kind) {
      case 'clients':
        return edge.clients();
      case 'kick':
        return edge.kick(query.id);
      case 'load':
        return edge.load();
      case 'metrics':
        return metrics.getMetricsAsJSON();
    }
  };

  let server: Server | undefined;
  process.on('message', (message: MasterToEdge, handle?: Socket) => {
    switch (message.type) {
      case 'conn':
        if (handle) {
          const received = message.received === undefined ? undefined : bufferOf(message.received);
          edge.accept(handle, { received, tried: message.tried ?? [] });
        }
        return;
      case 'level':
        edge.level(message.least, message.margin);
        return;
      case 'listen':
        if (handle) server = listen(edge, handle, log);
        return;
      case 'configure':
        edge.configure(message.config);
        return;
      case 'retire':
        // Stop accepting; the players here finish watching on this edge, then it exits.
        server?.close();
        log.info('retiring: no new players; exiting when the last one leaves');
        edge.retire(() => {
          edge.close();
          process.exit(0);
        });
        return;
      case 'cluster-stats':
        edge.serverStats = message.stats;
        return;
      case 'drain':
        edge.drain(message.streams);
        return;
      case 'query':
        return void answerQuery(message.id, () => answer(message.query), send);
      case 'answer':
        queries.answer(message);
        return;
      case 'shutdown':
        edge.close();
        process.exit(0);
    }
  });
  const sendStats = whenChanged(send);
  setInterval(() => sendStats(edge.stats()), STATS_INTERVAL_MS).unref();
  // Ready once the source link is up, so the first players find the streams.
  void edge.connected.then(() => {
    send({ type: 'ready' });
    optimizeFromNowOn();
  });
  edge.start();
}

/** Accepts players on this edge's copy of the master's public socket. */
function listen(edge: Edge, handle: object, log: Logger): Server {
  // Half-open: an upload delimited by the end of the connection (RFC 9112 §6.3) sends its FIN
  // before the answer; the socket must stay writable while it moves on to the source.
  const server = createServer({ allowHalfOpen: true }, (socket) => edge.accept(socket));
  server.on('error', (err) => log.error(`public socket: ${err.message}`));
  server.listen(handle, LISTEN_BACKLOG, () => send({ type: 'listening' }));
  return server;
}

try {
  main();
} catch (err) {
  exitAtStart('edge', err);
}
