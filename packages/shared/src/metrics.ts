/**
 * Prometheus metrics (prom-client). Each process keeps its own registry; the
 * master gathers every process's `getMetricsAsJSON()` over IPC and merges
 * them into one text answer for `/metrics`.
 *
 * Hot paths only bump plain fields: the metrics here read them at collect
 * time (prom-client's `collect()` callbacks), never once per Segment per player.
 *
 * prom-client is loaded at the first scrape, not at start: it costs each
 * process about 4.5 MB and a 10 ms event-loop timer, which a server nobody
 * scrapes should not pay (docs/performance.md). Everything that counts
 * from start is kept here without it: our own totals live in the processes'
 * plain fields, the CPU counters are carried over from process.cpuUsage(),
 * and garbage collections are tallied by GcTally.
 */
import { createRequire } from 'node:module';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { LatencyHistogram } from './latency.js';

type PromClient = typeof import('prom-client');

const require = createRequire(import.meta.url);
let promClient: PromClient | undefined;

function prom(): PromClient {
  return (promClient ??= require('prom-client') as PromClient);
}

/** One process's metrics as they cross IPC: prom-client's JSON form (plain objects). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Our own metrics are summed across processes; the rest (Node's process metrics) stay per process. */
const OWN_PREFIX = 'mkvcast_';

/** prom-client's Prometheus text content type (Registry.PROMETHEUS_CONTENT_TYPE), without loading it. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A metric's value as prom-client's JSON form carries it. */
interface MetricValue {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/** prom-client's name, help and buckets (lib/metrics/gc.js), so that the series reads the same. */
const GC_METRIC = 'nodejs_gc_duration_seconds';
const GC_HELP = 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.';
const GC_BUCKETS_S = [0.001, 0.01, 0.1, 1, 2, 5];
const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * Garbage collections by kind in prom-client's buckets, from the process's
 * start: prom-client's own GC histogram would count only from the first scrape.
 * At most 4 kinds × 7 buckets.
 */
class GcTally {
  readonly #byKind = new Map<string, { counts: number[]; sumS: number }>();

  constructor() {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = GC_KINDS[(entry as { detail?: { kind?: number } }).detail?.kind ?? -1];
        if (kind !== undefined) this.#add(kind, entry.duration / 1000);
      }
    }).observe({ entryTypes: ['gc'] });
  }

  #add(kind: string, seconds: number): void {
    let tally = this.#byKind.get(kind);
    if (tally === undefined) this.#byKind.set(kind, (tally = { counts: new Array<number>(GC_BUCKETS_S.length + 1).fill(0), sumS: 0 }));
    const bucket = GC_BUCKETS_S.findIndex((bound) => seconds <= bound);
    tally.counts[bucket === -1 ? GC_BUCKETS_S.length : bucket]!++;
    tally.sumS += seconds;
  }

  /** A metric object for a prom-client Registry (a metric is any object with a `get()`). */
  metric(): object {
    const get = (): object => {
      const values: MetricValue[] = [];
      for (const [kind, { counts, sumS }] of this.#byKind) {
        let seen = 0;
        GC_BUCKETS_S.forEach((bound, i) => {
          seen += counts[i]!;
          values.push({ metricName: `${GC_METRIC}_bucket`, labels: { le: bound, kind }, value: seen });
        });
        seen += counts[GC_BUCKETS_S.length]!;
        values.push({ metricName: `${GC_METRIC}_bucket`, labels: { le: '+Inf', kind }, value: seen });
        values.push({ metricName: `${GC_METRIC}_sum`, labels: { kind }, value: sumS });
        values.push({ metricName: `${GC_METRIC}_count`, labels: { kind }, value: seen });
      }
      return { name: GC_METRIC, help: GC_HELP, type: 'histogram', aggregator: 'sum', values };
    };
    return { name: GC_METRIC, help: GC_HELP, type: 'histogram', aggregator: 'sum', get };
  }
}

/** prom-client's CPU counters (lib/metrics/processCpuTotal.js) count from their creation. */
const CPU_COUNTERS: [string, (u: NodeJS.CpuUsage) => number][] = [
  ['process_cpu_user_seconds_total', (u) => u.user],
  ['process_cpu_system_seconds_total', (u) => u.system],
  ['process_cpu_seconds_total', (u) => u.user + u.system],
];

type Define = (prom: PromClient, registry: Registry) => void;

/**
 * A process's metrics: Node's default process metrics (CPU, memory, event
 * loop, GC) and ours. The prom-client Registry behind them is made at the
 * first getMetricsAsJSON(); until then a metric is only its definition.
 */
export class ProcessRegistry {
  readonly #defines: Define[] = [];
  readonly #gc = new GcTally();
  #registry: Registry | undefined;

  /** Adds a metric, made with prom-client once it is loaded. */
  define(define: Define): void {
    if (this.#registry) define(prom(), this.#registry);
    else this.#defines.push(define);
  }

  getMetricsAsJSON(): Promise<MetricsJson> {
    return this.#made().getMetricsAsJSON();
  }

  #made(): Registry {
    if (this.#registry) return this.#registry;
    const p = prom();
    const registry = new p.Registry();
    const before = process.cpuUsage();
    p.collectDefaultMetrics({ register: registry });
    for (const [name, part] of CPU_COUNTERS) (registry.getSingleMetric(name) as InstanceType<PromClient['Counter']>).inc(part(before) / 1e6);
    // Replaced in place by the tally from start (prom-client's observer stays, feeding nothing read).
    registry.removeSingleMetric(GC_METRIC);
    registry.registerMetric(this.#gc.metric() as Parameters<Registry['registerMetric']>[0]);
    for (const define of this.#defines.splice(0)) define(p, registry);
    this.#registry = registry;
    return registry;
  }
}

/** A process's registry, with Node's default process metrics (CPU, memory, event loop, GC). */
export function processRegistry(): ProcessRegistry {
  return new ProcessRegistry();
}

type Labelled = Record<string, number> | Map<string, number>;

function entries(values: Labelled): Iterable<[string, number]> {
  return values instanceof Map ? values : Object.entries(values);
}

/** A counter whose value is read at collect time: a total kept in a plain field. */
export function counterFrom(registry: ProcessRegistry, name: string, help: string, read: () => number): void {
  registry.define(({ Counter }, r) => {
    new Counter({
      name,
      help,
      registers: [r],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  });
}

/** A gauge read at collect time. */
export function gaugeFrom(registry: ProcessRegistry, name: string, help: string, read: () => number): void {
  registry.define(({ Gauge }, r) => {
    new Gauge({
      name,
      help,
      registers: [r],
      collect() {
        this.set(read());
      },
    });
  });
}

/** A counter per label value (`{stream}`, `{reason}`), read at collect time. */
export function labelledCounterFrom(registry: ProcessRegistry, name: string, help: string, label: string, read: () => Labelled): void {
  labelledFrom('Counter', registry, name, help, label, read);
}

/** A gauge per label value, read at collect time (values gone since the last scrape disappear). */
export function labelledGaugeFrom(registry: ProcessRegistry, name: string, help: string, label: string, read: () => Labelled): void {
  labelledFrom('Gauge', registry, name, help, label, read);
}

/** Either kind: reset, then each label value's figure added to 0. */
function labelledFrom(kind: 'Counter' | 'Gauge', registry: ProcessRegistry, name: string, help: string, label: string, read: () => Labelled): void {
  registry.define((prom, r) => {
    new prom[kind]({
      name,
      help,
      labelNames: [label],
      registers: [r],
      collect() {
        this.reset();
        for (const [value, n] of entries(read())) this.inc({ [label]: value }, n);
      },
    });
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
export function histogramFrom(registry: ProcessRegistry, name: string, help: string, read: () => LatencyHistogram): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const latency = read();
      const values: MetricValue[] = [];
      let seen = 0;
      let upTo = 0;
      for (const bound of LATENCY_BOUNDS_MS) {
        for (; upTo <= bound; upTo++) seen += latency.counts[upTo] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { le: bound / 1000 }, value: seen });
      }
      const count = latency.samples;
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: count });
      values.push({ metricName: `${name}_sum`, labels: {}, value: latency.sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: {}, value: count });
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  registry.define((_, r) => r.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]));
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
  const text = await prom().AggregatorRegistry.aggregate(labelled).metrics();
  // prom-client spells a value that is not a number "Nan"; the exposition format's spelling is "NaN"
  // (an idle process's event-loop lag mean, before its first sample).
  return text.replace(/ Nan$/gm, ' NaN');
}
