// What the fan-out measurement needs from a server under test, whichever server it is.

export type ServerName = 'mkvcast' | 'icecast';

export interface ServerUnderTest {
  readonly name: ServerName;
  /** The live stream, on 127.0.0.1. */
  readonly url: string;
  /** Processes whose CPU and memory are the server's, as they are now. */
  serverPids(): number[];
  /** A separate publisher feeding the server (Icecast's ffmpeg source); reported apart. */
  publisherPids(): number[];
  /** Figures the server reports about itself, read as the measuring window ends. */
  windowEnd(): Promise<Record<string, unknown>>;
  /** Why the server is no longer running, or null while it runs. */
  failure(): string | null;
  /** The last lines it logged, for error reports. */
  tail(): string;
  /** Stops the server and everything started for it; never throws. */
  stop(): Promise<void>;
}

/** Run settings shared by every server so that both see the same load. */
export interface FanoutSettings {
  joinMs: number;
  durationS: number;
  warmupS: number;
  /** The stream's rate in bit/s: a player keeps up at ≥ 90 % of it over the window. */
  rateBps: number;
  /** Load generator processes to split the players over. */
  loadgens: number;
  /** Load generator players that search their bytes for the publisher's markers (latency bench). */
  sampled?: number;
  /** Streams the players are spread over (the server's URL with 1 … N appended); 1: the URL itself. */
  streams?: number;
  /** A second path for every other sampled player (mkvcast's ?start=next). */
  nextPath?: string;
  verbose: boolean;
}

/** A publisher process the bench starts against a server (the latency bench's, in publisher.ts). */
export interface PublisherSpec {
  /** Node arguments, given where to publish: a URL and, for Icecast, its source password. */
  args(target: { url: string; password: string | null }): string[];
  /** Each stdout line it prints. */
  onLine(line: string): void;
  verbose: boolean;
}
