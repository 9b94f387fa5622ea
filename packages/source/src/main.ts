/**
 * The back-source process: forked by the master with its SourceConfig as
 * JSON in argv[2]. Ingests every input, publishes Segments to the edges over
 * the hub's Unix socket, reports readiness, ends and stats over IPC.
 */
import { Logger, describeError, type SourceConfig, type SourceToMaster, type MasterToSource } from '@mkvcast/shared';
import { createClusterProcessor } from './clusterPool.js';
import { Hub } from './hub.js';
import { StreamIngest } from './ingest.js';
import { openInput } from './input.js';

const STATS_INTERVAL_MS = 1000;

function send(message: SourceToMaster): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as SourceConfig;
  const log = new Logger('source', config.logLevel);
  // The master owns shutdown: a terminal's Ctrl-C reaches the whole group, so ignore it here.
  process.on('SIGINT', () => undefined);
  process.on('disconnect', () => process.exit(0));

  const hub = await Hub.listen(config, log);
  const processor = createClusterProcessor(config.workers);
  const ingests = config.inputs.map((input) => new StreamIngest(input, hub, processor, log));

  const shutdown = async (): Promise<void> => {
    for (const ingest of ingests) ingest.stop();
    await hub.close();
    await processor.close();
    process.exit(0);
  };
  // Inputs start when the master says the port is open, so the first players see the first Cluster.
  let started = false;
  process.on('message', (message: MasterToSource) => {
    if (message.type === 'shutdown') void shutdown();
    else if (message.type === 'start' && !started) {
      started = true;
      for (const ingest of ingests) void runIngest(ingest, hub, log);
    }
  });
  const stats = setInterval(() => send(hub.stats()), STATS_INTERVAL_MS);
  stats.unref();

  send({ type: 'ready' });
}

async function runIngest(ingest: StreamIngest, hub: Hub, log: Logger): Promise<void> {
  try {
    await ingest.run(openInput);
    if (ingest.stopped) return;
    hub.endStream(ingest.name, 'eof');
    log.info(`stream '${ingest.name}': end of input`);
    await hub.flushed(10_000);
    send({ type: 'ended', stream: ingest.name, ok: true });
  } catch (err) {
    if (ingest.stopped) return;
    const message = describeError(err);
    hub.endStream(ingest.name, 'error', message);
    await hub.flushed(10_000);
    send({ type: 'ended', stream: ingest.name, ok: false, message });
  }
}

main().catch((err) => {
  process.stderr.write(`mkvcast source: ${describeError(err)}\n`);
  process.exit(1);
});
