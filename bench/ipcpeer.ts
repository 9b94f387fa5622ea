// The receiving side of the IPC bench, in its own process as an edge is: listens on a Unix socket,
// decodes every frame with the real Channel, counts Segment bytes, and answers each 'mark' with
// the count since the previous one.
//
//   node build/bench/ipcpeer.js <socket path>    (prints "ready" on stdout once listening)
import net from 'node:net';
import { Channel } from '@mkvcast/shared';

/** What the bench sends: Segments as the source would, then a mark that ends a timed run. */
export type PeerIn = { type: 'segment'; bytes: Uint8Array } | { type: 'mark' };
export type PeerOut = { type: 'result'; frames: number; bytes: number };

const IDLE_EXIT_MS = 10 * 60_000;

function serve(socketPath: string): void {
  const server = net.createServer((socket) => {
    // One connection per run of the bench: the peer has done its job when it closes.
    server.close();
    const channel = new Channel<PeerIn, PeerOut>(socket);
    let frames = 0;
    let bytes = 0;
    channel.on('message', (m) => {
      if (m.type === 'segment') {
        frames++;
        bytes += m.bytes.length;
      } else if (m.type === 'mark') {
        channel.send({ type: 'result', frames, bytes });
        frames = 0;
        bytes = 0;
      }
    });
    channel.on('close', () => process.exit(0));
  });
  server.listen(socketPath, () => process.stdout.write('ready\n'));
  // Never outlive a bench that vanished without closing the socket.
  setTimeout(() => process.exit(3), IDLE_EXIT_MS).unref();
}

const socketPath = process.argv[2];
if (socketPath === undefined) {
  process.stderr.write('usage: ipcpeer <socket path>\n');
  process.exit(64);
}
serve(socketPath);
