/**
 * Prometheus metrics (prom-client). Each process keeps its own Registry; the
 * master gathers every process's `getMetricsAsJSON()` over IPC and merges
 * them into one text answer for `/metrics`.
 *
 * Hot paths only bump plain fields: the metrics here read them at collect
 * time (prom-client's `collect()` callbacks), never once per Segment per player.
 */
import { AggregatorRegistry, Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LatencyHistogram } from './latency.js';

export { Registry };

/** One process's metrics as they cross IPC: prom-client's JSON form (plain objects). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Our own metrics are summed across processes; the rest (Node's process metrics) stay per process. */
const OWN_PREFIX = 'mkvcast_';

/** A process's registry, with Node's default process metrics (CPU, memory, event loop, GC). */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

type Labelled = Record<string, number> | Map<string, number>;

function entries(values: Labelled): Iterable<[string, number]> {
  return values instanceof Map ? values : Object.entries(values);
}

/** A counter whose value is read at collect time: a total kept in a plain field. */
export function counterFrom(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** A gauge read at collect time. */
export function gaugeFrom(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter per label value (`{stream}`, `{reason}`), read at collect time. */
export function labelledCounterFrom(registry: Registry, name: string, help: string, label: string, read: () => Labelled): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of entries(read())) this.inc({ [label]: value }, n);
    },
  });
}

/** A gauge per label value, read at collect time (values gone since the last scrape disappear). */
export function labelledGaugeFrom(registry: Registry, name: string, help: string, label: string, read: () => Labelled): void {
  new Gauge({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of entries(read())) this.set({ [label]: value }, n);
    },
  });
}

/** Bucket bounds, in seconds, that /metrics shows of a LatencyHistogram's 1 ms buckets. */
const LATENCY_BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/**
 * A Prometheus histogram built from a LatencyHistogram at collect time.
 * prom-client's Histogram can only observe one value at a time; the edge
 * already counts every latency in fixed buckets, so this hands prom-client
 * the finished values instead (a metric is any object with a `get()`).
 */
export function histogramFrom(registry: Registry, name: string, help: string, read: () => LatencyHistogram): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const latency = read();
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      let seen = 0;
      let upTo = 0;
      for (const bound of LATENCY_BOUNDS_MS) {
        for (; upTo <= bound; upTo++) seen += latency.counts[upTo] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { le: bound / 1000 }, value: seen });
      }
      const count = latency.counts.reduce((a, b) => a + b, 0);
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
      values.push({ metricName: `${name}_sum`, labels: {}, value: latency.sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: {}, value: count });
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/**
 * The whole server's metrics as Prometheus text: our own `mkvcast_*`
 * metrics summed over processes (AggregatorRegistry), every other metric
 * (Node's process metrics) kept apart with a `process` label.
 */
export async function aggregateMetrics(perProcess: { process: string; metrics: MetricsJson }[]): Promise<string> {
  const labelled = perProcess.map(({ process, metrics }) =>
    metrics.map((metric) => {
      if (metric.name.startsWith(OWN_PREFIX)) return metric;
      // Labels make each process's values distinct; 'first' keeps them all (even those prom-client would omit).
      return { ...metric, aggregator: 'first', values: metric.values.map((v) => ({ ...v, labels: { ...v.labels, process } })) };
    }),
  );
  const text = await AggregatorRegistry.aggregate(labelled).metrics();
  // prom-client spells a value that is not a number "Nan"; the exposition format's spelling is "NaN"
  // (an idle process's event-loop lag mean, before its first sample).
  return text.replace(/ Nan$/gm, ' NaN');
}

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
