/**
 * What the master uses: errors, logs, config and the control messages, but
 * not the media path (the Matroska scanner, the msgpack framing of the
 * stream channel, the Segment ring). Every module a process loads stays in
 * its memory, source text included, so the master imports from here
 * (`@mkvcast/shared/control-plane`): 1.1 MiB less of its idle PSS.
 */
export * from './errors.js';
export * from './log.js';
export * from './config.js';
export * from './latency.js';
export * from './metrics.js';
export * from './startup.js';
export * from './nodeInternals.js';
export * from './http/errors.js';
export * from './http/handoff.js';
export * from './http/streamPath.js';
export * from './protocol/control.js';
export * from './protocol/api.js';
export * from './auth/jwt.js';
