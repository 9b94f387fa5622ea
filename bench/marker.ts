// The marker the latency bench's publisher puts in each video frame and its players look for.

/** 8 bytes that occur in no frame of the bench's clip, then the frame's sequence number (uint32 BE). */
export const MARKER_MAGIC = Buffer.from([0x4d, 0x4b, 0x56, 0x4c, 0x41, 0x54, 0xf0, 0x0d]);
export const MARKER_BYTES = MARKER_MAGIC.length + 4;
