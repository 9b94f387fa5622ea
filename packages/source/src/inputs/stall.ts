import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';

/**
 * Calls `onStall` when the sender on `socket` went quiet for `ms` while `reader` waited for bytes.
 * Bytes in the reader's buffer mean the consumer is behind, not the sender: the socket is idle
 * because of our own backpressure, so the guard re-arms. A reader that drained its buffer just
 * as the timer fired gets one turn of the event loop for the kernel's pending bytes to land
 * before the sender is blamed. Returns the disarm.
 */
export function guardStall(socket: Socket, reader: Readable, ms: number, onStall: () => void): () => void {
  let disarmed = false;
  const onTimeout = (): void => {
    if (reader.readableLength > 0) return void socket.setTimeout(ms);
    const before = socket.bytesRead;
    setImmediate(() => {
      if (disarmed || socket.destroyed) return;
      if (socket.bytesRead !== before || reader.readableLength > 0) socket.setTimeout(ms);
      else onStall();
    });
  };
  socket.setTimeout(ms);
  socket.on('timeout', onTimeout);
  return () => {
    disarmed = true;
    socket.setTimeout(0);
    socket.off('timeout', onTimeout);
  };
}
