export { Hub } from './hub.js';
export { StreamIngest } from './ingest.js';
export { PieceBuilder, type Piece, type PieceRules, type BlockPlace } from './pieces.js';
export { readBlock, type BlockInfo } from './block.js';
export { BlockForwarder, type PassRules } from './forwarder.js';
export { withoutChildren, type LiveHeader } from './header.js';
export { buildLiveHeader, InlineHeaderBuilder } from './headerDecode.js';
export { PooledHeaderBuilder, type HeaderBuilder, type HeaderPoolOptions } from './headerBuilder.js';
