/**
 * A latency histogram with 1 ms buckets up to MAX_MS (and one overflow
 * bucket): fixed memory, mergeable across processes by adding counts.
 */
const MAX_MS = 1000;

export interface LatencySummary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export class LatencyHistogram {
  readonly counts: number[];
  #max = 0;
  /** Every sample added, ms: Prometheus histograms carry a sum. */
  #sum = 0;
  /**
   * How many samples the counts hold, kept as they come: the master merges
   * and summarizes the edges' histograms every second, and an idle server
   * must not walk 1 002 empty buckets to learn that nothing happened (a loop
   * run that often gets V8's optimizing compiler woken in an idle master).
   */
  #samples: number;

  constructor(counts?: number[], max = 0) {
    this.counts = counts ?? new Array<number>(MAX_MS + 2).fill(0);
    this.#max = max;
    this.#samples = counts ? counts.reduce((a, b) => a + b, 0) : 0;
  }

  get samples(): number {
    return this.#samples;
  }

  get max(): number {
    return this.#max;
  }

  /** The samples recorded here, added up, ms. */
  get sumMs(): number {
    return this.#sum;
  }

  record(ms: number): void {
    const bucket = ms <= 0 ? 0 : ms > MAX_MS ? MAX_MS + 1 : Math.ceil(ms);
    this.counts[bucket]!++;
    this.#samples++;
    this.#sum += Math.max(0, ms);
    if (ms > this.#max) this.#max = ms;
  }

  add(other: { counts: number[]; max: number; samples: number }): void {
    if (other.samples === 0) return;
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.#samples += other.samples;
    if (other.max > this.#max) this.#max = other.max;
  }

  /** Percentiles are bucket upper bounds: "p99 ≤ this many ms". */
  summary(): LatencySummary {
    const samples = this.#samples;
    const at = (q: number): number => {
      const target = Math.ceil(samples * q);
      let seen = 0;
      for (let i = 0; i < this.counts.length; i++) {
        seen += this.counts[i]!;
        if (seen >= target) return i > MAX_MS ? this.#max : i;
      }
      return this.#max;
    };
    return { samples, p50: samples ? at(0.5) : 0, p99: samples ? at(0.99) : 0, max: Math.round(this.#max) };
  }
}
