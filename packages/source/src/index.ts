export { Hub } from './hub.js';
export { StreamIngest } from './ingest.js';
export { PieceBuilder, type Piece, type PieceRules, type BlockPlace } from './pieces.js';
export { readBlock, type BlockInfo } from './block.js';
export { BlockForwarder, type PassRules } from './forwarder.js';
export { buildLiveHeader, withoutChildren, type LiveHeader } from './header.js';
