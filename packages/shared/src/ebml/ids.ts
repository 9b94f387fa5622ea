/**
 * EBML and Matroska element IDs (RFC 8794 §11, RFC 9559 §5.1), written with
 * their length marker bits as they appear on the wire.
 */
export const EBML_ID = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Void: 0xec,
  CRC32: 0xbf,
} as const;

export const MKV_ID = {
  Segment: 0x18538067,
  // Level 1, children of Segment.
  SeekHead: 0x114d9b74,
  Info: 0x1549a966,
  Tracks: 0x1654ae6b,
  Cluster: 0x1f43b675,
  Cues: 0x1c53bb6b,
  Chapters: 0x1043a770,
  Tags: 0x1254c367,
  Attachments: 0x1941a469,
  // Info children.
  TimestampScale: 0x2ad7b1,
  Duration: 0x4489,
  // Tracks children.
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  // Cluster children.
  Timestamp: 0xe7,
  Position: 0xa7,
  PrevSize: 0xab,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  EncryptedBlock: 0xaf,
  SilentTracks: 0x5854,
  // BlockGroup children.
  Block: 0xa1,
  ReferenceBlock: 0xfb,
  BlockDuration: 0x9b,
} as const;

/** Level-1 elements a live player needs before the first Cluster (the brief's stream header). */
export const HEADER_ELEMENT_IDS: ReadonlySet<number> = new Set([
  MKV_ID.Info,
  MKV_ID.Tracks,
  MKV_ID.Tags,
  MKV_ID.Chapters,
  MKV_ID.Attachments,
]);

/** Every ID that may stand at level 1 (or top level): one of these ends an unknown-size Cluster. */
export const LEVEL1_IDS: ReadonlySet<number> = new Set([
  EBML_ID.EBML,
  MKV_ID.Segment,
  MKV_ID.SeekHead,
  MKV_ID.Info,
  MKV_ID.Tracks,
  MKV_ID.Cluster,
  MKV_ID.Cues,
  MKV_ID.Chapters,
  MKV_ID.Tags,
  MKV_ID.Attachments,
]);

/** TrackType values (RFC 9559 §5.1.4.1.3). */
export const TRACK_TYPE = { video: 1, audio: 2, subtitle: 0x11 } as const;
