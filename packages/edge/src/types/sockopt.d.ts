// sockopt ships no type declarations; this is the part of its surface we use.
declare module 'sockopt' {
  import type { Socket } from 'node:net';

  export function getsockopt(socket: Socket, level: number, option: number): number;
  export function setsockopt(socket: Socket, level: number, option: number, value: number): void;
}
