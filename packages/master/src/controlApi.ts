import { createRequire } from 'node:module';
import {
  HTTP_STATUS,
  HttpError,
  PendingQueries,
  aggregateMetrics,
  answerQuery,
  labelledCounterFrom,
  processRegistry,
  type AnswerMessage,
  type ApiQuery,
  type EdgeInfo,
  type EdgeQuery,
  type EdgeResults,
  type HttpErrorCode,
  type MetricsJson,
  type QueryMessage,
  type ProcessRegistry,
  type SourceQuery,
  type SourceResults,
  type StreamInfo,
} from '@mkvcast/shared/control-plane';
import type { ReloadResult } from './reload.js';

/** What the Control API needs of a child process. */
export interface QueriedChild<Q> {
  readonly ready: boolean;
  readonly pid: number | null;
  readonly restarts: number;
  send(message: QueryMessage<Q>): boolean;
}

/** What the Control API needs of the master. */
export interface ApiHost {
  source: QueriedChild<SourceQuery>;
  /** The edges serving now (not those retiring), each with its id. */
  edges(): readonly { id: number; child: QueriedChild<EdgeQuery> }[];
  /** The options in force, secrets masked. */
  options(): object;
  startedAt: number;
  /** POST /api/v1/reload. */
  reload(): Promise<ReloadResult>;
  /** Connections the master itself turned away (503: no edge or no source to take them). */
  unavailable(): number;
}

/** Queries to the children waiting at once, and how long one may wait (less than an edge waits on the master). */
const MAX_CHILD_QUERIES = 256;
const CHILD_QUERY_MS = 5000;
const CLIENT_ID = /^(\d+)-\d+$/;

const require = createRequire(import.meta.url);
const VERSION = (require('../../package.json') as { version: string }).version;

/**
 * The master's side of the Control API and /metrics. An edge forwards each
 * request; the answer is gathered fresh from the source and every edge over
 * IPC. A child that is restarting or slow to answer is left out of lists
 * (its players are gone or will show at the next request), and makes a
 * request about it alone fail with a code.
 */
export class ControlApi {
  readonly #host: ApiHost;
  readonly #pending = new PendingQueries(MAX_CHILD_QUERIES, CHILD_QUERY_MS);
  readonly #registry: ProcessRegistry;

  constructor(host: ApiHost) {
    this.#host = host;
    this.#registry = processRegistry();
    labelledCounterFrom(this.#registry, 'mkvcast_child_restarts_total', 'Times the master restarted a child process', 'process', () => {
      const restarts: Record<string, number> = { source: host.source.restarts };
      for (const { id, child } of host.edges()) restarts[`edge-${id}`] = child.restarts;
      return restarts;
    });
    labelledCounterFrom(this.#registry, 'mkvcast_rejected_total', 'Requests refused, by reason', 'reason', () => ({ unavailable: host.unavailable() }));
  }

  /** An edge's query: answered with the result or an error code. */
  serve(edge: { send(answer: AnswerMessage): boolean }, message: QueryMessage<ApiQuery>): void {
    void answerQuery(message.id, () => this.handle(message.query), (answer) => edge.send(answer));
  }

  /** A child's answer to one of our queries. */
  answer(message: AnswerMessage): void {
    this.#pending.answer(message);
  }

  close(): void {
    this.#pending.close();
  }

  async handle(query: ApiQuery): Promise<unknown> {
    switch (query.kind) {
      case 'streams':
        return { streams: await this.#streams() };
      case 'stream': {
        const stream = (await this.#streams()).find((s) => s.name === query.name);
        if (!stream) throw new HttpError('MKV_ERR_STREAM_NOT_FOUND', `no live stream named '${query.name}'`);
        return stream;
      }
      case 'cut-stream':
        await this.#askSource({ kind: 'cut', name: query.name });
        return { stream: query.name, cut: true };
      case 'clients':
        return { clients: (await this.#askEdges({ kind: 'clients' })).flatMap(({ result }) => result) };
      case 'kick-client':
        return this.#kick(query.id);
      case 'edges':
        return { edges: await this.#edges() };
      case 'server':
        return this.#server();
      case 'reload': {
        const result = await this.#host.reload();
        // A refused reload (a bad file, no --config) is an error answer; the running config stays.
        if (!result.ok) throw new HttpError(result.code in HTTP_STATUS ? (result.code as HttpErrorCode) : 'MKV_ERR_CONFIG', result.error);
        return result;
      }
      case 'metrics':
        return this.#metrics();
    }
  }

  async #streams(): Promise<StreamInfo[]> {
    const [streams, loads] = await Promise.all([this.#askSource({ kind: 'streams' }), this.#askEdges({ kind: 'load' })]);
    return streams.map((s) => ({
      ...s,
      url: `/live/${encodeURIComponent(s.name)}`,
      players: loads.reduce((n, { result }) => n + (result.playersByStream[s.name] ?? 0), 0),
    }));
  }

  async #kick(id: string): Promise<unknown> {
    const edgeId = Number(CLIENT_ID.exec(id)?.[1]);
    const edge = this.#host.edges().find((e) => e.id === edgeId)?.child;
    const notFound = new HttpError('MKV_ERR_CLIENT_NOT_FOUND', `no player with id '${id}'`);
    if (!edge) throw notFound;
    if (!(await this.#ask<EdgeResults['kick']>(edge, `edge ${edgeId}`, { kind: 'kick', id }))) throw notFound;
    return { client: id, kicked: true };
  }

  async #edges(): Promise<EdgeInfo[]> {
    const loads = new Map((await this.#askEdges({ kind: 'load' })).map(({ edge, result }) => [edge, result]));
    return this.#host.edges().map(({ id, child }) => {
      const load = loads.get(id);
      return {
        id,
        pid: child.pid,
        ready: child.ready,
        players: load ? Object.values(load.playersByStream).reduce((a, b) => a + b, 0) : 0,
        connections: load?.connections ?? 0,
        restarts: child.restarts,
      };
    });
  }

  #server(): object {
    const host = this.#host;
    return {
      name: 'mkvcast',
      version: VERSION,
      node: process.version,
      startedAt: new Date(host.startedAt).toISOString(),
      uptimeS: Math.round((Date.now() - host.startedAt) / 1000),
      pids: { master: process.pid, source: host.source.pid, edges: host.edges().map((e) => e.child.pid) },
      options: host.options(),
    };
  }

  /** Every process's registry, merged: ours summed, Node's process metrics labelled per process. */
  async #metrics(): Promise<string> {
    const perProcess: { process: string; metrics: MetricsJson }[] = [{ process: 'master', metrics: await this.#registry.getMetricsAsJSON() }];
    const [source, edges] = await Promise.all([
      this.#askSource({ kind: 'metrics' }).catch(() => undefined),
      this.#askEdges({ kind: 'metrics' }),
    ]);
    if (source) perProcess.push({ process: 'source', metrics: source });
    for (const { edge, result } of edges) perProcess.push({ process: `edge-${edge}`, metrics: result });
    return aggregateMetrics(perProcess);
  }

  #askSource<K extends SourceQuery['kind']>(query: Extract<SourceQuery, { kind: K }>): Promise<SourceResults[K]> {
    return this.#ask(this.#host.source, 'the source', query);
  }

  /** Every ready edge's answer, in edge order; an edge that fails to answer is left out. */
  async #askEdges<K extends EdgeQuery['kind']>(query: Extract<EdgeQuery, { kind: K }>): Promise<{ edge: number; result: EdgeResults[K] }[]> {
    const asked = this.#host.edges().map(({ id, child }) =>
      child.ready ? this.#ask<EdgeResults[K]>(child, `edge ${id}`, query).then((result) => ({ edge: id, result })) : undefined,
    );
    const settled = await Promise.allSettled(asked.filter((p) => p !== undefined));
    return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  }

  #ask<T>(child: QueriedChild<never>, what: string, query: SourceQuery | EdgeQuery): Promise<T> {
    return this.#pending.ask<T>(what, (id) => (child as QueriedChild<typeof query>).send({ type: 'query', id, query }));
  }
}
