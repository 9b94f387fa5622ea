import { createHash } from 'node:crypto';
import ebml from 'ebml';
import type { EbmlTag } from 'ebml';
import {
  CorruptStreamError,
  MKV_ID,
  UNKNOWN_SIZE_8,
  encodeId,
  encodeSize8,
  readId,
  readSize,
  type TrackSummary,
} from '@mkvcast/shared';

/** What the source knows about a stream from its header elements. */
export interface LiveHeader {
  docType: string;
  /** ns per Cluster/Block timestamp tick (RFC 9559 §11.1, default 1 000 000). */
  timestampScale: number;
  tracks: TrackSummary[];
  /** Track number of the first video track, 0 when there is none. */
  videoTrack: number;
  /** DefaultDuration (ns per frame, RFC 9559 §5.1.4.1.12) of the tracks that have one, by track number. */
  defaultDurations: Map<number, number>;
  /** EBML header + Segment of unknown size + Info (no Duration) + Tracks + Tags/Chapters/Attachments. */
  bytes: Buffer;
}

const TRACK_TYPES: Record<number, TrackSummary['type']> = { 1: 'video', 2: 'audio', 0x11: 'subtitle' };

/** Header elements in the order a player expects them. */
const ORDER = [MKV_ID.Info, MKV_ID.Tracks, MKV_ID.Chapters, MKV_ID.Attachments, MKV_ID.Tags];

/**
 * Builds the live stream header from the EBML header and the level-1
 * elements met before the first Cluster. The Segment size becomes "unknown"
 * (RFC 8794 §6.2) and Info loses its Duration: a live stream has neither.
 */
export function buildLiveHeader(ebmlHeader: Buffer, docType: string, elements: Map<number, Buffer>): LiveHeader {
  const info = elements.get(MKV_ID.Info);
  const tracksElement = elements.get(MKV_ID.Tracks);
  if (!info) throw new CorruptStreamError('the stream has no Info element before its first Cluster');
  if (!tracksElement) throw new CorruptStreamError('the stream has no Tracks element before its first Cluster');

  const timestampScale = readTimestampScale(info);
  const { tracks, defaultDurations } = readTracks(tracksElement);
  if (tracks.length === 0) throw new CorruptStreamError('the stream declares no tracks');
  const video = tracks.find((t) => t.type === 'video');

  const parts: Buffer[] = [ebmlHeader, encodeId(MKV_ID.Segment), UNKNOWN_SIZE_8];
  for (const id of ORDER) {
    const element = elements.get(id);
    if (!element) continue;
    parts.push(id === MKV_ID.Info ? withoutChildren(element, new Set([MKV_ID.Duration])) : element);
  }
  return { docType, timestampScale, tracks, videoTrack: video?.number ?? 0, defaultDurations, bytes: Buffer.concat(parts) };
}

/** Decodes one master element with node-ebml and returns its leaf tags. */
function decodeTags(element: Buffer): EbmlTag[] {
  const tags: EbmlTag[] = [];
  const decoder = new ebml.Decoder();
  decoder.on('data', ([kind, tag]) => {
    tags.push(kind === 'tag' ? tag : { ...tag, name: `${kind}:${tag.name}` });
  });
  try {
    decoder.write(element);
  } catch (err) {
    throw new CorruptStreamError(`undecodable header element: ${(err as Error).message}`);
  }
  return tags;
}

function readTimestampScale(info: Buffer): number {
  // node-ebml names elements by the Matroska v2 schema (TimecodeScale) and strips marker bits from tag IDs.
  const tag = decodeTags(info).find((t) => t.name === 'TimecodeScale');
  const scale = typeof tag?.value === 'number' ? tag.value : 1_000_000;
  if (!(scale > 0)) throw new CorruptStreamError(`invalid TimestampScale ${scale}`);
  return scale;
}

function readTracks(tracksElement: Buffer): { tracks: TrackSummary[]; defaultDurations: Map<number, number> } {
  const tracks: TrackSummary[] = [];
  const defaultDurations = new Map<number, number>();
  let current: Partial<TrackSummary> & { rawType?: number; defaultDuration?: number } = {};
  for (const tag of decodeTags(tracksElement)) {
    if (tag.name === 'start:TrackEntry') current = {};
    else if (tag.name === 'TrackNumber') current.number = Number(tag.value);
    else if (tag.name === 'TrackType') current.rawType = Number(tag.value);
    else if (tag.name === 'CodecID') current.codec = String(tag.value);
    else if (tag.name === 'DefaultDuration' && Number(tag.value) > 0) current.defaultDuration = Number(tag.value);
    else if (tag.name === 'CodecPrivate' && tag.data) current.setup = createHash('sha1').update(tag.data).digest('hex').slice(0, 16);
    else if (tag.name === 'end:TrackEntry') {
      if (!current.number) throw new CorruptStreamError('a TrackEntry has no TrackNumber');
      tracks.push({
        number: current.number,
        type: TRACK_TYPES[current.rawType ?? 0] ?? 'other',
        codec: current.codec ?? 'unknown',
        setup: current.setup ?? '',
      });
      if (current.defaultDuration !== undefined) defaultDurations.set(current.number, current.defaultDuration);
    }
  }
  return { tracks, defaultDurations };
}

/** A copy of a master element without the direct children whose IDs are in `drop`. */
export function withoutChildren(element: Buffer, drop: ReadonlySet<number>): Buffer {
  const id = readId(element, 0);
  if (typeof id === 'number') throw new CorruptStreamError('bad element ID');
  const size = readSize(element, id.length);
  if (typeof size === 'number') throw new CorruptStreamError('bad element size');
  const bodyStart = id.length + size.length;
  const kept: Buffer[] = [];
  let pos = bodyStart;
  while (pos < element.length) {
    const childId = readId(element, pos);
    if (typeof childId === 'number') throw new CorruptStreamError('bad child ID');
    const childSize = readSize(element, pos + childId.length);
    if (typeof childSize === 'number' || childSize.value < 0) throw new CorruptStreamError('bad child size');
    const end = pos + childId.length + childSize.length + childSize.value;
    if (end > element.length) throw new CorruptStreamError('child element runs past its parent');
    if (!drop.has(childId.value)) kept.push(element.subarray(pos, end));
    pos = end;
  }
  const bodyLength = kept.reduce((n, b) => n + b.length, 0);
  return Buffer.concat([element.subarray(0, id.length), encodeSize8(bodyLength), ...kept]);
}
