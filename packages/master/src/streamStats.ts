import type { EdgeStats, SourceStreamStats, StreamStats } from '@mkvcast/shared/control-plane';

interface Sample {
  /** When the master first saw the stream live, ms. */
  since: number;
  at: number;
  bytesIn: number;
  bytesOut: number;
  bitrateIn: number;
  bitrateOut: number;
}

/**
 * Per-stream figures the master adds to what the source reports: players
 * and bytes out summed over the edges, bit rates from one sample to the
 * next (the counters are totals), and how long each stream has been live.
 * Sampled once per stats interval, so every reader sees the same rates.
 */
export class StreamStatsTracker {
  readonly #samples = new Map<string, Sample>();

  /** Takes a sample: called once per stats interval. Streams the source no longer has are forgotten. */
  sample(now: number, streams: readonly SourceStreamStats[], edges: readonly (EdgeStats | null)[]): void {
    const live = new Set<string>();
    for (const stream of streams) {
      live.add(stream.name);
      const bytesOut = sumOut(stream.name, edges);
      const last = this.#samples.get(stream.name);
      if (!last) {
        this.#samples.set(stream.name, { since: now, at: now, bytesIn: stream.bytesIn, bytesOut, bitrateIn: 0, bitrateOut: 0 });
        continue;
      }
      const seconds = (now - last.at) / 1000;
      if (seconds <= 0) continue;
      // A restarted source or edge starts its counters again: no rate across that.
      last.bitrateIn = stream.bytesIn >= last.bytesIn ? Math.round(((stream.bytesIn - last.bytesIn) * 8) / seconds) : 0;
      last.bitrateOut = bytesOut >= last.bytesOut ? Math.round(((bytesOut - last.bytesOut) * 8) / seconds) : 0;
      last.at = now;
      last.bytesIn = stream.bytesIn;
      last.bytesOut = bytesOut;
    }
    for (const name of this.#samples.keys()) if (!live.has(name)) this.#samples.delete(name);
  }

  /** Every stream the source reports, with the edges' players and traffic and the last sampled rates. */
  streams(now: number, streams: readonly SourceStreamStats[], edges: readonly (EdgeStats | null)[]): StreamStats[] {
    return streams.map((stream) => {
      const sample = this.#samples.get(stream.name);
      let players = 0;
      for (const edge of edges) players += edge?.playersByStream[stream.name] ?? 0;
      return {
        ...stream,
        players,
        bytesOut: sumOut(stream.name, edges),
        bitrateIn: sample?.bitrateIn ?? 0,
        bitrateOut: sample?.bitrateOut ?? 0,
        uptimeS: sample ? Math.round((now - sample.since) / 1000) : 0,
      };
    });
  }
}

function sumOut(name: string, edges: readonly (EdgeStats | null)[]): number {
  let bytes = 0;
  for (const edge of edges) bytes += edge?.bytesOutByStream?.[name] ?? 0;
  return bytes;
}
