/**
 * The live stream header, assembled from the EBML header and the level-1
 * elements before the first Cluster, around the facts headerDecode.ts reads
 * from Info and Tracks. No node-ebml here: the source's main thread loads
 * this module, and node-ebml (about 8 MB once loaded) only on the worker.
 */
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

/**
 * What node-ebml reads from Info and Tracks: the slow part of a header
 * (node-ebml decodes ~16–20 MB/s; Tracks may carry megabytes of CodecPrivate).
 */
export interface HeaderFacts {
  timestampScale: number;
  tracks: TrackSummary[];
  defaultDurations: Map<number, number>;
}

/** Header elements in the order a player expects them. */
const ORDER = [MKV_ID.Info, MKV_ID.Tracks, MKV_ID.Chapters, MKV_ID.Attachments, MKV_ID.Tags];

/** Info and Tracks, which every live header needs. */
export function headerElements(elements: ReadonlyMap<number, Buffer>): { info: Buffer; tracks: Buffer } {
  const info = elements.get(MKV_ID.Info);
  const tracks = elements.get(MKV_ID.Tracks);
  if (!info) throw new CorruptStreamError('the stream has no Info element before its first Cluster');
  if (!tracks) throw new CorruptStreamError('the stream has no Tracks element before its first Cluster');
  return { info, tracks };
}

/**
 * The header's bytes around decoded facts: copies, no decoding. The Segment
 * size becomes "unknown" (RFC 8794 §6.2) and Info loses its Duration: a live
 * stream has neither.
 */
export function assembleLiveHeader(ebmlHeader: Buffer, docType: string, elements: ReadonlyMap<number, Buffer>, facts: HeaderFacts): LiveHeader {
  const { timestampScale, tracks, defaultDurations } = facts;
  const video = tracks.find((t) => t.type === 'video');
  const parts: Buffer[] = [ebmlHeader, encodeId(MKV_ID.Segment), UNKNOWN_SIZE_8];
  for (const id of ORDER) {
    const element = elements.get(id);
    if (!element) continue;
    parts.push(id === MKV_ID.Info ? withoutChildren(element, new Set([MKV_ID.Duration])) : element);
  }
  return { docType, timestampScale, tracks, videoTrack: video?.number ?? 0, defaultDurations, bytes: Buffer.concat(parts) };
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
