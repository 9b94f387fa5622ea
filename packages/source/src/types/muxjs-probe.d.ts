// mux.js ships no type declarations; this is the part of its MPEG-TS probe we use.
declare module 'mux.js/cjs/m2ts/probe.js' {
  interface Probe {
    /** What a 188-byte packet carries, given the PMT PID once known. */
    parseType(packet: Uint8Array, pmtPid?: number): 'pat' | 'pmt' | 'pes' | null;
    /** The PMT PID announced by a PAT packet. */
    parsePat(packet: Uint8Array): number;
    /** Elementary PID → stream_type of a PMT packet (undefined for a PMT not yet in force). */
    parsePmt(packet: Uint8Array): Record<number, number> | undefined;
  }
  const probe: Probe;
  export default probe;
}
