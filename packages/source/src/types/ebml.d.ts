// node-ebml ships no type declarations; this is the part of its surface we use.
declare module 'ebml' {
  import { EventEmitter } from 'node:events';

  export interface EbmlTag {
    name: string;
    tag: number;
    type: string;
    dataSize: number;
    start: number;
    end: number;
    value?: number | string;
    data?: Uint8Array;
  }

  export type EbmlChunk = ['start' | 'tag' | 'end', EbmlTag];

  export class Decoder extends EventEmitter {
    constructor(options?: object);
    write(chunk: Uint8Array): boolean;
    on(event: 'data', listener: (chunk: EbmlChunk) => void): this;
  }

  const ebml: { Decoder: typeof Decoder };
  export default ebml;
}
