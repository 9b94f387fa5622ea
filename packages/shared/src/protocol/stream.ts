/**
 * Stream messages, source → edge: a stream's live header, its Segments in
 * sequence, and its end.
 */

export interface TrackSummary {
  number: number;
  type: 'video' | 'audio' | 'subtitle' | 'other';
  codec: string;
  /** A digest of the track's CodecPrivate (decoder set-up), '' when it has none. */
  setup: string;
  /** Video: PixelWidth and PixelHeight (RFC 9559 §5.1.4.1.28.6–7). */
  width?: number;
  height?: number;
  /** Audio: SamplingFrequency in Hz and Channels (RFC 9559 §5.1.4.1.29.1, .3). */
  sampleRate?: number;
  channels?: number;
}

/**
 * Two headers can follow each other in one stream when their tracks decode
 * alike: same numbers, types, codecs and decoder set-up. (UIDs and titles may
 * differ: a muxer writes new random UIDs every run.)
 */
export function sameTracks(a: readonly TrackSummary[], b: readonly TrackSummary[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => t.number === b[i]!.number && t.type === b[i]!.type && t.codec === b[i]!.codec && t.setup === b[i]!.setup)
  );
}

/** The live stream header: what every player receives first. */
export interface HeaderMessage {
  type: 'header';
  stream: string;
  /** Bumped when the header changes (new codecs): players must start afresh. */
  generation: number;
  docType: string;
  tracks: TrackSummary[];
  bytes: Uint8Array;
}

/** One or more whole Clusters. */
export interface SegmentMessage {
  type: 'segment';
  stream: string;
  /** Consecutive within an epoch; a gap tells the edge its players must wait for a keyframe. */
  seq: number;
  /** Milliseconds since the stream's first Cluster (not the Cluster's own timestamp). */
  ts: number;
  /** A player may start decoding here. */
  keyframe: boolean;
  /** Wall-clock ms when the source had its bytes (read, or released by pacing): latency is measured from here. */
  sentAt: number;
  bytes: Uint8Array;
}

export interface EndMessage {
  type: 'end';
  stream: string;
  /** 'eof': the input ended normally; 'error': it failed (see message). */
  reason: 'eof' | 'error';
  message?: string;
}
