/**
 * An edge process: forked by the master with its EdgeConfig as JSON in
 * argv[2]. Pulls Segments from the source, takes public connections from the
 * master as socket handles, and reports load, stats and stream ends over IPC.
 */
import type { Socket } from 'node:net';
import { Logger, describeError, type EdgeConfig, type EdgeToMaster, type MasterToEdge } from '@mkvcast/shared';
import { Edge } from './edge.js';

const STATS_INTERVAL_MS = 1000;
/** Load reports are coalesced: at most one per this many ms. */
const LOAD_REPORT_MS = 20;

function send(message: EdgeToMaster): void {
  if (process.connected) process.send?.(message);
}

function main(): void {
  const config = JSON.parse(process.argv[2] ?? '{}') as EdgeConfig;
  const log = new Logger(`edge ${config.edgeId}`, config.logLevel);
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => process.exit(0));

  let load: { connections: number; received: number } | null = null;
  let loadTimer: NodeJS.Timeout | undefined;
  const edge = new Edge(config, log, {
    load(connections, received) {
      load = { connections, received };
      loadTimer ??= setTimeout(() => {
        loadTimer = undefined;
        if (load) send({ type: 'load', ...load });
      }, LOAD_REPORT_MS);
    },
    streamDone(stream) {
      send({ type: 'stream-done', stream });
    },
    handBack(socket, received, tried) {
      if (!process.connected) return socket.destroy();
      process.send!({ type: 'full', received: received.toString('latin1'), tried }, socket, { keepOpen: false });
    },
  });

  process.on('message', (message: MasterToEdge, handle?: Socket) => {
    switch (message.type) {
      case 'conn':
        if (handle) edge.accept(handle, message.received === undefined ? undefined : Buffer.from(message.received, 'latin1'), message.tried);
        return;
      case 'cluster-stats':
        edge.serverStats = message.stats;
        return;
      case 'drain':
        edge.drain(message.streams);
        return;
      case 'shutdown':
        edge.close();
        process.exit(0);
    }
  });
  setInterval(() => send(edge.stats()), STATS_INTERVAL_MS).unref();
  // Ready once the source link is up, so the first players find the streams.
  void edge.connected.then(() => send({ type: 'ready' }));
  edge.start();
}

try {
  main();
} catch (err) {
  process.stderr.write(`mkvcast edge: ${describeError(err)}\n`);
  process.exit(1);
}
