import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Calls `onStall` when `socket` receives nothing for `ms` while `reader` has nothing buffered.
 * Bytes waiting in the reader's buffer mean the consumer is behind, not the sender: the socket
 * is idle because of our own backpressure, so the guard re-arms instead. Returns the disarm.
 */
export function guardStall(socket: Socket, reader: Readable, ms: number, onStall: () => void): () => void {
  const onTimeout = (): void => {
    if (reader.readableLength > 0) socket.setTimeout(ms);
    else onStall();
  };
  socket.setTimeout(ms);
  socket.on('timeout', onTimeout);
  return () => {
    socket.setTimeout(0);
    socket.off('timeout', onTimeout);
  };
}
