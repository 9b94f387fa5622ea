/**
 * What DASH needs from a stream header: the init segment (EBML header,
 * unknown-size Segment, Info, Tracks), the timescale, and the RFC 6381
 * codecs strings of its tracks. The header arrives whole from the source
 * (one message): a plain walk over known-size elements is enough here.
 */
import { createHash } from 'node:crypto';
import { EBML_ID, MKV_ID, UNKNOWN_SIZE_8, encodeId, readId, readSize, readUint, type HeaderMessage } from '@mkvcast/shared';

/** IDs read here that ids.ts has no use for elsewhere (RFC 9559 §5.1.4.1). */
const CODEC_PRIVATE = 0x63a2;

export interface DashTrack {
  number: number;
  type: 'video' | 'audio' | 'other';
  /** RFC 6381 codecs entry, '' for tracks no manifest names (subtitles). */
  codecs: string;
  width?: number;
  height?: number;
  sampleRate?: number;
}

export interface DashHeader {
  /** EBML header + Segment (unknown size) + Info + Tracks. */
  init: Buffer;
  initEtag: string;
  /** Ticks per second: 1e9 / TimestampScale (RFC 9559 §5.1.2.1; 1000 by default). */
  timescale: number;
  tracks: DashTrack[];
  /** The first video track's number; 0 for an audio-only stream. */
  videoTrack: number;
  /** `video/webm`, `audio/webm`, or the x-matroska pair for a Matroska stream. */
  mimeType: string;
}

interface Child {
  id: number;
  start: number;
  body: number;
  end: number;
}

/** The known-size children of bytes[from, to); stops at the first it cannot read. */
function children(bytes: Uint8Array, from: number, to: number): Child[] {
  const out: Child[] = [];
  let pos = from;
  while (pos < to) {
    const id = readId(bytes, pos, to);
    if (typeof id === 'number') break;
    const size = readSize(bytes, pos + id.length, to);
    if (typeof size === 'number' || size.value < 0) break;
    const body = pos + id.length + size.length;
    if (body + size.value > to) break;
    out.push({ id: id.value, start: pos, body, end: body + size.value });
    pos = body + size.value;
  }
  return out;
}

/** A strong ETag (RFC 9110 §8.8.3): a hash of the bytes, so every edge gives the same one. */
export function etagOf(bytes: Uint8Array): string {
  return `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 27)}"`;
}

export function parseDashHeader(header: HeaderMessage): DashHeader {
  const bytes = header.bytes;
  const top = readTop(bytes);
  const parts: Uint8Array[] = [top.ebml, encodeId(MKV_ID.Segment), UNKNOWN_SIZE_8];
  let timestampScale = 1_000_000;
  const privates = new Map<number, Uint8Array>();
  for (const el of top.level1) {
    if (el.id === MKV_ID.Info) {
      parts.push(bytes.subarray(el.start, el.end));
      const scale = children(bytes, el.body, el.end).find((c) => c.id === MKV_ID.TimestampScale);
      if (scale) timestampScale = readUint(bytes, scale.body, scale.end - scale.body) || timestampScale;
    } else if (el.id === MKV_ID.Tracks) {
      parts.push(bytes.subarray(el.start, el.end));
      for (const entry of children(bytes, el.body, el.end)) {
        if (entry.id !== MKV_ID.TrackEntry) continue;
        const fields = children(bytes, entry.body, entry.end);
        const number = fields.find((c) => c.id === MKV_ID.TrackNumber);
        const priv = fields.find((c) => c.id === CODEC_PRIVATE);
        if (number && priv) privates.set(readUint(bytes, number.body, number.end - number.body), bytes.subarray(priv.body, priv.end));
      }
    }
  }
  const init = Buffer.concat(parts);
  const tracks: DashTrack[] = header.tracks.map((t) => ({
    number: t.number,
    type: t.type === 'video' || t.type === 'audio' ? t.type : 'other',
    codecs: t.type === 'video' || t.type === 'audio' ? codecsOf(t.codec, privates.get(t.number)) : '',
    ...(t.width !== undefined ? { width: t.width } : {}),
    ...(t.height !== undefined ? { height: t.height } : {}),
    ...(t.sampleRate !== undefined ? { sampleRate: t.sampleRate } : {}),
  }));
  const video = tracks.find((t) => t.type === 'video');
  const kind = video ? 'video' : 'audio';
  return {
    init,
    initEtag: etagOf(init),
    // An MPD timescale is an integer; TimestampScales that do not divide 1 s are rounded (rare: muxers write 1 ms).
    timescale: Math.max(1, Math.round(1e9 / timestampScale)),
    tracks,
    videoTrack: video?.number ?? 0,
    mimeType: header.docType === 'webm' ? `${kind}/webm` : `${kind}/x-matroska`,
  };
}

/** The EBML header's bytes and the Segment's level-1 children (the Segment's size is unknown: it runs to the end). */
function readTop(bytes: Uint8Array): { ebml: Uint8Array; level1: Child[] } {
  const [ebml] = children(bytes, 0, bytes.length);
  if (!ebml || ebml.id !== EBML_ID.EBML) return { ebml: new Uint8Array(0), level1: [] };
  const id = readId(bytes, ebml.end);
  if (typeof id === 'number' || id.value !== MKV_ID.Segment) return { ebml: bytes.subarray(0, ebml.end), level1: [] };
  const size = readSize(bytes, ebml.end + id.length);
  if (typeof size === 'number') return { ebml: bytes.subarray(0, ebml.end), level1: [] };
  const body = ebml.end + id.length + size.length;
  return { ebml: bytes.subarray(0, ebml.end), level1: children(bytes, body, bytes.length) };
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0').toUpperCase();
const dec2 = (n: number): string => String(n).padStart(2, '0');

/** RFC 6381 codecs entry from a Matroska CodecID (RFC 9559 §5.1.4.1.21, the Matroska codec mappings) and CodecPrivate. */
export function codecsOf(codecId: string, priv: Uint8Array | undefined): string {
  switch (codecId) {
    case 'V_VP8':
      return 'vp8';
    case 'V_VP9':
      return vp9Codecs(priv);
    case 'V_AV1':
      return av1Codecs(priv);
    case 'V_MPEG4/ISO/AVC':
      // avcC: version, profile, constraints, level (ISO/IEC 14496-15 §5.3.3.1).
      return priv && priv.length >= 4 ? `avc1.${hex2(priv[1]!)}${hex2(priv[2]!)}${hex2(priv[3]!)}` : 'avc1';
    case 'V_MPEGH/ISO/HEVC':
      return 'hev1';
    case 'A_OPUS':
      return 'opus';
    case 'A_VORBIS':
      return 'vorbis';
    case 'A_FLAC':
      return 'flac';
    case 'A_AC3':
      return 'ac-3';
    case 'A_EAC3':
      return 'ec-3';
    case 'A_MPEG/L3':
      return 'mp4a.6B';
    case 'A_AAC':
      // AudioSpecificConfig: the object type is its first 5 bits (ISO/IEC 14496-3 §1.6.2.1).
      return priv && priv.length >= 1 ? `mp4a.40.${priv[0]! >> 3}` : 'mp4a.40.2';
    default:
      return codecId.replace(/^[VAS]_/, '').toLowerCase();
  }
}

/**
 * VP9 CodecPrivate: ID, length, value triples (the WebM VP9 codec feature
 * metadata): 1 profile, 2 level, 3 bit depth. Without them, plain `vp9`,
 * which browsers take in WebM.
 */
function vp9Codecs(priv: Uint8Array | undefined): string {
  const features = new Map<number, number>();
  let pos = 0;
  while (priv && pos + 2 <= priv.length) {
    const length = priv[pos + 1]!;
    if (pos + 2 + length > priv.length) break;
    if (length === 1) features.set(priv[pos]!, priv[pos + 2]!);
    pos += 2 + length;
  }
  const profile = features.get(1);
  const level = features.get(2);
  const depth = features.get(3);
  if (profile === undefined || level === undefined || depth === undefined) return 'vp9';
  return `vp09.${dec2(profile)}.${dec2(level)}.${dec2(depth)}`;
}

/** av1C (AV1 ISOBMFF binding §2.3): profile, level, tier, bit depth. */
function av1Codecs(priv: Uint8Array | undefined): string {
  if (!priv || priv.length < 3) return 'av01';
  const profile = priv[1]! >> 5;
  const level = priv[1]! & 0x1f;
  const tier = priv[2]! & 0x80 ? 'H' : 'M';
  const high = (priv[2]! & 0x40) !== 0;
  const twelve = (priv[2]! & 0x20) !== 0;
  const depth = high ? (twelve ? 12 : 10) : 8;
  return `av01.${profile}.${dec2(level)}${tier}.${dec2(depth)}`;
}
