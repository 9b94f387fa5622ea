import {
  counterFrom,
  gaugeFrom,
  histogramFrom,
  labelledCounterFrom,
  labelledGaugeFrom,
  processRegistry,
  type ProcessRegistry,
} from '@mkvcast/shared';
import type { Edge } from './edge.js';

/** An edge's metrics, read from its plain totals at each scrape. */
export function edgeRegistry(edge: Edge): ProcessRegistry {
  const registry = processRegistry();
  labelledGaugeFrom(registry, 'mkvcast_players', 'Players connected, by stream', 'stream', () => edge.stats().playersByStream);
  labelledCounterFrom(registry, 'mkvcast_bytes_sent_total', 'Bytes written to players, by stream', 'stream', () => edge.totals.bytesSentByStream);
  counterFrom(registry, 'mkvcast_player_skips_total', 'Times a slow player skipped ahead to the next keyframe', () => edge.totals.skips);
  labelledCounterFrom(
    registry,
    'mkvcast_player_kicks_total',
    'Players disconnected by the server: slow (behind for --slow-timeout) or api (DELETE /api/v1/clients/<id>)',
    'reason',
    () => edge.totals.kicks,
  );
  labelledCounterFrom(registry, 'mkvcast_rejected_total', 'Requests refused, by reason', 'reason', () => edge.totals.rejected);
  gaugeFrom(registry, 'mkvcast_connections', 'Open connections on the edges (players, API requests, uploads on their way)', () => edge.totals.connections);
  histogramFrom(
    registry,
    'mkvcast_segment_latency_seconds',
    'Time from the source having a Segment to its write on a player socket',
    () => edge.totals.latency,
  );
  return registry;
}
