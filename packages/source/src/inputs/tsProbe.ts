import probe from 'mux.js/cjs/m2ts/probe.js';

const PACKET = 188;
const SYNC = 0x47;
/** ISO/IEC 13818-1 stream_type values of AAC: in ADTS frames, and in LATM. */
const STREAM_TYPE_AAC_ADTS = 0x0f;
const STREAM_TYPE_AAC_LATM = 0x11;

export interface TsPrograms {
  /** stream_type of each elementary stream of the first program. */
  streamTypes: number[];
}

/**
 * The stream types of the first PMT in the leading bytes of an MPEG-TS
 * stream, or null when no PMT is complete in them yet. Only packet-aligned
 * streams (sync byte every 188 bytes from the start) are read.
 */
export function tsStreamTypes(head: Buffer): TsPrograms | null {
  let pmtPid: number | undefined;
  for (let at = 0; at + PACKET <= head.length; at += PACKET) {
    const packet = head.subarray(at, at + PACKET);
    if (packet[0] !== SYNC) return null;
    const type = probe.parseType(packet, pmtPid);
    if (type === 'pat') pmtPid ??= probe.parsePat(packet);
    else if (type === 'pmt') {
      const table = probe.parsePmt(packet);
      if (table) return { streamTypes: Object.values(table) };
    }
  }
  return null;
}

/**
 * AAC that ffmpeg cannot copy into Matroska on a pipe: the muxer writes the
 * track's CodecPrivate (AudioSpecificConfig) in the header, before the first
 * packet, and AAC in MPEG-TS brings none ("Error parsing AAC extradata").
 */
export function needsAudioEncode(programs: TsPrograms | null): boolean {
  return programs?.streamTypes.some((t) => t === STREAM_TYPE_AAC_ADTS || t === STREAM_TYPE_AAC_LATM) ?? false;
}
