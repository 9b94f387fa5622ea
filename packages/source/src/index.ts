export { Hub } from './hub.js';
export { StreamIngest, clusterTimestamp } from './ingest.js';
export { buildLiveHeader, withoutChildren, type LiveHeader } from './header.js';
export { processCluster, type ClusterJob, type ClusterPiece } from './cluster.js';
export { createClusterProcessor, type ClusterProcessor } from './clusterPool.js';
