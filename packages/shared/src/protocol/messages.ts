import type { HelloMessage, WelcomeMessage } from './session.js';
import type { EndMessage, HeaderMessage, SegmentMessage } from './stream.js';

/** Every frame the source sends an edge. */
export type SourceMessage = WelcomeMessage | HeaderMessage | SegmentMessage | EndMessage;

/** Every frame an edge sends the source. */
export type EdgeMessage = HelloMessage;
