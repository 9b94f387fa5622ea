import { Piscina } from 'piscina';
import { processCluster, type ClusterJob, type ClusterPiece } from './cluster.js';

/** Runs the stateless per-Cluster work, on worker threads or in this thread. */
export interface ClusterProcessor {
  process(job: ClusterJob): Promise<ClusterPiece[]>;
  close(): Promise<void>;
}

/** In this thread: for a single stream the hop to a worker costs more than it saves. */
class InlineProcessor implements ClusterProcessor {
  async process(job: ClusterJob): Promise<ClusterPiece[]> {
    return processCluster(job);
  }

  async close(): Promise<void> {}
}

/** On piscina's threads, so a source ingesting many streams uses every core. */
class WorkerProcessor implements ClusterProcessor {
  readonly #pool: Piscina;

  constructor(threads: number) {
    this.#pool = new Piscina({
      filename: new URL('./clusterWorker.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: threads,
      idleTimeout: 30_000,
    });
  }

  async process(job: ClusterJob): Promise<ClusterPiece[]> {
    const bytes = job.bytes;
    // The scanner hands each Cluster its own ArrayBuffer: move it instead of copying.
    const movable = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const transferList = movable ? [bytes.buffer as ArrayBuffer] : [];
    return (await this.#pool.run(job, { transferList })) as ClusterPiece[];
  }

  async close(): Promise<void> {
    await this.#pool.close({ force: true });
  }
}

export function createClusterProcessor(workers: number): ClusterProcessor {
  return workers > 0 ? new WorkerProcessor(workers) : new InlineProcessor();
}
