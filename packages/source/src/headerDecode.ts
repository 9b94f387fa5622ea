/**
 * Reads Info and Tracks with node-ebml: the slow part of a live header
 * (node-ebml decodes ~16–20 MB/s, and Tracks may carry megabytes of
 * CodecPrivate). The source runs it on its header pool (headerWorker.ts);
 * buildLiveHeader and InlineHeaderBuilder run it in the calling thread, for
 * tests and tools.
 */
import { createHash } from 'node:crypto';
import ebml from 'ebml';
import type { EbmlTag } from 'ebml';
import { CorruptStreamError, type TrackSummary } from '@mkvcast/shared';
import { assembleLiveHeader, headerElements, type HeaderFacts, type LiveHeader } from './header.js';
import type { HeaderBuilder } from './headerBuilder.js';

const TRACK_TYPES: Record<number, TrackSummary['type']> = { 1: 'video', 2: 'audio', 0x11: 'subtitle' };

/** The live stream header from the EBML header and the level-1 elements met before the first Cluster, in this thread. */
export function buildLiveHeader(ebmlHeader: Buffer, docType: string, elements: ReadonlyMap<number, Buffer>): LiveHeader {
  const { info, tracks } = headerElements(elements);
  return assembleLiveHeader(ebmlHeader, docType, elements, decodeHeader(info, tracks));
}

/** Builds headers in this thread: for unit tests, which want no worker. */
export class InlineHeaderBuilder implements HeaderBuilder {
  async build(ebmlHeader: Buffer, docType: string, elements: ReadonlyMap<number, Buffer>): Promise<LiveHeader> {
    return buildLiveHeader(ebmlHeader, docType, elements);
  }

  async close(): Promise<void> {}
}

/** Decodes Info and Tracks (whole elements) with node-ebml: the slow part of buildLiveHeader. */
export function decodeHeader(info: Uint8Array, tracksElement: Uint8Array): HeaderFacts {
  const timestampScale = readTimestampScale(info);
  const { tracks, defaultDurations } = readTracks(tracksElement);
  if (tracks.length === 0) throw new CorruptStreamError('the stream declares no tracks');
  return { timestampScale, tracks, defaultDurations };
}

/** Decodes one master element with node-ebml and returns its leaf tags. */
function decodeTags(element: Uint8Array): EbmlTag[] {
  const tags: EbmlTag[] = [];
  const decoder = new ebml.Decoder();
  decoder.on('data', ([kind, tag]) => {
    tags.push(kind === 'tag' ? tag : { ...tag, name: `${kind}:${tag.name}` });
  });
  try {
    // In a worker the element arrives as a plain Uint8Array; node-ebml wants a Buffer (a view, no copy).
    decoder.write(Buffer.isBuffer(element) ? element : Buffer.from(element.buffer, element.byteOffset, element.byteLength));
  } catch (err) {
    throw new CorruptStreamError(`undecodable header element: ${(err as Error).message}`);
  }
  return tags;
}

function readTimestampScale(info: Uint8Array): number {
  // node-ebml names elements by the Matroska v2 schema (TimecodeScale) and strips marker bits from tag IDs.
  const tag = decodeTags(info).find((t) => t.name === 'TimecodeScale');
  const scale = typeof tag?.value === 'number' ? tag.value : 1_000_000;
  if (!(scale > 0)) throw new CorruptStreamError(`invalid TimestampScale ${scale}`);
  return scale;
}

function readTracks(tracksElement: Uint8Array): { tracks: TrackSummary[]; defaultDurations: Map<number, number> } {
  const tracks: TrackSummary[] = [];
  const defaultDurations = new Map<number, number>();
  let current: Partial<TrackSummary> & { rawType?: number; defaultDuration?: number } = {};
  for (const tag of decodeTags(tracksElement)) {
    if (tag.name === 'start:TrackEntry') current = {};
    else if (tag.name === 'TrackNumber') current.number = Number(tag.value);
    else if (tag.name === 'TrackType') current.rawType = Number(tag.value);
    else if (tag.name === 'CodecID') current.codec = unpadded(String(tag.value));
    else if (tag.name === 'DefaultDuration' && Number(tag.value) > 0) current.defaultDuration = Number(tag.value);
    else if (tag.name === 'CodecPrivate' && tag.data) current.setup = createHash('sha1').update(tag.data).digest('hex').slice(0, 16);
    else if (tag.name === 'PixelWidth') current.width = Number(tag.value);
    else if (tag.name === 'PixelHeight') current.height = Number(tag.value);
    else if (tag.name === 'SamplingFrequency') current.sampleRate = Number(tag.value);
    else if (tag.name === 'Channels') current.channels = Number(tag.value);
    else if (tag.name === 'end:TrackEntry') {
      if (!current.number) throw new CorruptStreamError('a TrackEntry has no TrackNumber');
      tracks.push({
        number: current.number,
        type: TRACK_TYPES[current.rawType ?? 0] ?? 'other',
        codec: current.codec ?? 'unknown',
        setup: current.setup ?? '',
        ...formatOf(current),
      });
      if (current.defaultDuration !== undefined) defaultDurations.set(current.number, current.defaultDuration);
    }
  }
  return { tracks, defaultDurations };
}

/**
 * A String element's value without its padding: RFC 8794 §7.4 lets a
 * String end in zero octets (GStreamer's webmmux writes "V_VP8\0"), which
 * are not part of the value.
 */
function unpadded(value: string): string {
  const nul = value.indexOf('\0');
  return nul === -1 ? value : value.slice(0, nul);
}

/** The picture size and audio format a TrackEntry gave, for the stats (dropped when not positive numbers). */
function formatOf(track: Partial<TrackSummary>): Partial<TrackSummary> {
  const format: Partial<TrackSummary> = {};
  for (const key of ['width', 'height', 'sampleRate', 'channels'] as const) {
    const value = track[key];
    if (typeof value === 'number' && Number.isFinite(value) && value > 0) format[key] = value;
  }
  return format;
}
