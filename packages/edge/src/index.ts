export { Edge, type EdgeEvents } from './edge.js';
export { LiveStream } from './liveStream.js';
export { Player, type PlayerPolicy, type PlayerCounters } from './player.js';
export { RequestHeadReader, parseHead, MAX_HEAD_BYTES, type RequestHead } from './http/request.js';
export { HttpError, HTTP_STATUS } from './http/errors.js';
