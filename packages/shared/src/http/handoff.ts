import type { Socket } from 'node:net';
import { stopHandleReading } from '../nodeInternals.js';

/**
 * Stops reading a socket for good (it is about to move to another process)
 * and returns what was read but not consumed. The buffer is drained first:
 * read() may start the handle reading again to refill it. Then reading is
 * stopped on the handle itself (pausing a stream does not stop libuv from
 * reading up to the high-water mark), as net.Socket#pause does for sockets
 * with an onread buffer. Whatever arrives later waits in the kernel and moves
 * with the socket.
 */
export function stopReading(socket: Socket): Buffer[] {
  const buffered: Buffer[] = [];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) buffered.push(chunk);
  stopHandleReading(socket);
  return buffered;
}
