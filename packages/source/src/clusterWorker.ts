/**
 * piscina worker entry: stateless Cluster work off the main thread. Results
 * cross back by structured clone, so their Buffers arrive as Uint8Arrays.
 */
import { processCluster, type ClusterJob, type ClusterPiece } from './cluster.js';

export default function clusterWorker(job: ClusterJob): ClusterPiece[] {
  return processCluster(job);
}
