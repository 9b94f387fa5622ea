/**
 * The back-source process: forked by the master with its SourceConfig as
 * JSON in its environment (CHILD_CONFIG_ENV). Ingests every input, publishes Segments to the edges over
 * the hub's Unix socket, reports readiness, ends and stats over IPC.
 */
import {
  childConfig,
  HttpError,
  Logger,
  answerQuery,
  exitAtStart,
  failPoint,
  type SourceConfig,
  type SourceQuery,
  type SourceToMaster,
  type MasterToSource,
  bufferOf,
  optimizeFromNowOn,
  whenChanged,
} from '@mkvcast/shared';
import type { Socket } from 'node:net';
import { Hub } from './hub.js';
import { Source } from './source.js';
import { sourceRegistry } from './metrics.js';

const STATS_INTERVAL_MS = 1000;

function send(message: SourceToMaster): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const config = childConfig<SourceConfig>();
  const log = new Logger('source', { level: config.logLevel, format: config.logFormat });
  // The master owns shutdown: a terminal's Ctrl-C reaches the whole group, so ignore it here.
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => process.exit(0));
  failPoint('source');

  const hub = await Hub.listen(config, log);
  const source = new Source(config, hub, log, send);
  const metrics = sourceRegistry(hub, source);
  const answer = (query: SourceQuery): unknown => {
    switch (query.kind) {
      case 'streams':
        return source.streams();
      case 'cut':
        if (!source.cut(query.name)) throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `no live stream named '${query.name}'`);
        return true;
      case 'metrics':
        return metrics.getMetricsAsJSON();
    }
  };

  const shutdown = async (): Promise<void> => {
    await source.close();
    await hub.close();
    process.exit(0);
  };
  // Inputs start when the master says the port is open, so the first players see the first Cluster.
  let started = false;
  process.on('message', (message: MasterToSource, handle?: Socket) => {
    switch (message.type) {
      case 'shutdown':
        return void shutdown();
      case 'start':
        if (!started) void source.start();
        started = true;
        return;
      case 'publish':
        if (handle) source.publish(handle, message.head, bufferOf(message.body));
        return;
      case 'query':
        return void answerQuery(message.id, () => answer(message.query), send);
      case 'configure':
        hub.configure(message.config);
        source.configure(message.config);
        return;
      case 'add-input':
        source.addInput(message.input, message.resume);
        return;
      case 'end-input':
        source.endInput(message.stream);
        return;
    }
  });
  const sendStats = whenChanged(send);
  setInterval(() => sendStats(hub.stats()), STATS_INTERVAL_MS).unref();
  send({ type: 'ready' });
  sendStats(hub.stats());
  optimizeFromNowOn();
}

main().catch((err) => exitAtStart('source', err));
