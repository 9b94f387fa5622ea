import { counterFrom, gaugeFrom, labelledCounterFrom, processRegistry, type ProcessRegistry } from '@mkvcast/shared';
import type { Hub } from './hub.js';
import type { Source } from './source.js';

/** The source's metrics, read from the hub's and the publish router's totals at each scrape. */
export function sourceRegistry(hub: Hub, source: Source): ProcessRegistry {
  const registry = processRegistry();
  labelledCounterFrom(registry, 'mkvcast_bytes_received_total', 'Media bytes taken in from inputs and publishers, by stream', 'stream', () => hub.totals().bytesIn);
  labelledCounterFrom(registry, 'mkvcast_segments_total', 'Segments cut and sent to the edges, by stream', 'stream', () => hub.totals().segments);
  labelledCounterFrom(registry, 'mkvcast_rejected_total', 'Requests refused, by reason', 'reason', () => source.rejected as Map<string, number>);
  counterFrom(registry, 'mkvcast_edge_links_dropped_total', 'Edge links the source dropped for falling too far behind', () => hub.totals().edgesDropped);
  gaugeFrom(registry, 'mkvcast_streams', 'Live streams', () => hub.describe().length);
  return registry;
}
