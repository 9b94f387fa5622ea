import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { InputError, StateError, UsageError, describeError } from '@mkvcast/shared';
import { InputStalledError } from './errors.js';
import type { Session, SessionSource } from './session.js';
import { guardStall } from './stall.js';

export interface TcpListenOptions {
  /** A publisher that sends nothing for this long (while we wait for bytes) is dropped: 15 s. */
  idleTimeoutMs?: number;
}

/** `tcp://host:port` → where to listen. Port 0 picks a free port. */
export function parseTcpUrl(url: string): { host: string; port: number } {
  const usage = new UsageError(`bad TCP input "${url}": expected tcp://host:port, e.g. tcp://0.0.0.0:12345`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage;
  }
  const extra = parsed.username || parsed.password || parsed.search || parsed.hash || (parsed.pathname !== '' && parsed.pathname !== '/');
  if (parsed.protocol !== 'tcp:' || !parsed.hostname || parsed.port === '' || extra) throw usage;
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port) };
}

function peerName(socket: Socket): string {
  const address = socket.remoteAddress ?? '?';
  return `${address.includes(':') ? `[${address}]` : address}:${socket.remotePort ?? '?'}`;
}

/**
 * A TCP port a publisher connects to and sends Matroska/WebM, the built-in form of the seeds'
 * `nc -l -p 12345 | server`. Each connection is a session; one publisher at a time, so a second
 * connection while one is active (or accepted and not yet taken) is refused.
 */
export class TcpListenSource implements SessionSource {
  readonly #server: Server;
  readonly #log: (line: string) => void;
  readonly #idle: number;
  /** The publisher's socket from accept to close, handed out or not. */
  #current: Socket | undefined;
  /** Accepted before anyone asked: handed to the next next(). */
  #ready: Session | undefined;
  #waiter: ((session: Session | null) => void) | undefined;
  #closed = false;

  /** Listens on `url` (tcp://host:port): a UsageError for a bad URL, an InputError when the bind fails. */
  static async listen(url: string, log: (line: string) => void = () => {}, options: TcpListenOptions = {}): Promise<TcpListenSource> {
    const { host, port } = parseTcpUrl(url);
    const server = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new InputError(`cannot listen on ${url}: ${describeError(err)}`, { cause: err });
    }
    return new TcpListenSource(server, log, options.idleTimeoutMs ?? 15_000);
  }

  private constructor(server: Server, log: (line: string) => void, idleTimeoutMs: number) {
    this.#server = server;
    this.#log = log;
    this.#idle = idleTimeoutMs;
    server.on('connection', (socket) => this.#accept(socket));
    server.on('error', (err) => log(`tcp listener: ${describeError(err)}`));
  }

  get address(): AddressInfo {
    return this.#server.address() as AddressInfo;
  }

  /** The next publisher; null once closed. Rejects with the signal's reason when it aborts. */
  async next(signal: AbortSignal): Promise<Session | null> {
    signal.throwIfAborted();
    if (this.#closed) return null;
    const ready = this.#ready;
    if (ready) {
      this.#ready = undefined;
      ready.stream.off('error', ignore);
      return ready;
    }
    if (this.#waiter) throw new StateError('TcpListenSource.next() is already waiting');
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.#waiter = undefined;
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiter = (session) => {
        signal.removeEventListener('abort', onAbort);
        this.#waiter = undefined;
        resolve(session);
      };
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    this.#current?.destroy();
    this.#waiter?.(null);
  }

  #accept(socket: Socket): void {
    const peer = peerName(socket);
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#current) {
      this.#log(`tcp client ${peer} refused: publisher ${peerName(this.#current)} is still connected`);
      socket.destroy();
      return;
    }
    this.#current = socket;
    const session: Session = { stream: socket, label: `tcp client ${peer}`, kind: 'tcp' };
    // Keepalive finds a publisher whose host vanished; the stall guard one that went quiet.
    socket.setKeepAlive(true, 5_000);
    const disarm = guardStall(socket, socket, this.#idle, () => {
      socket.destroy(new InputStalledError(`tcp client ${peer} sent nothing for ${this.#idle} ms`));
    });
    socket.once('close', () => {
      disarm();
      if (this.#current === socket) this.#current = undefined;
      if (this.#ready === session) this.#ready = undefined;
    });
    if (this.#waiter) return this.#waiter(session);
    socket.on('error', ignore); // nobody reads it yet; a reset before next() only frees the slot
    this.#ready = session;
  }
}

function ignore(): void {}
