/**
 * The live manifest (ISO/IEC 23009-1, DASH-IF IOP "dynamic" MPD) of one
 * stream: one AdaptationSet whose Representation carries every track, as the
 * segments do (WebM segments are whole Clusters of all tracks, as the
 * stream is), a SegmentTemplate addressed by $Time$, and a SegmentTimeline of
 * the window. The server's clock travels in the manifest (UTCTiming
 * "direct", ISO/IEC 23009-1 §5.8.5.7): without it dash.js asks a time server
 * on the internet, which a closed network cannot reach. A cached manifest
 * tells a time at most its max-age old (under a second).
 */
import type { DashSegment, DashStore } from './dashStore.js';

/** Seconds as an xs:duration. */
function duration(ms: number): string {
  return `PT${Math.max(0, Math.round(ms) / 1000)}S`;
}

function attr(value: string): string {
  return value.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Segment timing for the manifest and its caching. */
export interface Timing {
  /** The newest segment's duration, ms. */
  newestMs: number;
  /** The longest listed, ms. */
  maxMs: number;
}

export function timingOf(store: DashStore, segments: readonly DashSegment[]): Timing {
  const scale = 1000 / store.header.timescale;
  let maxMs = 0;
  for (const s of segments) maxMs = Math.max(maxMs, s.d * scale);
  return { newestMs: (segments[segments.length - 1]?.d ?? 0) * scale, maxMs };
}

/** `<S>` elements, runs of equal back-to-back durations folded into `r` (ISO/IEC 23009-1 §5.3.9.6). */
function timeline(segments: readonly DashSegment[]): string {
  const out: string[] = [];
  let i = 0;
  while (i < segments.length) {
    const first = segments[i]!;
    let repeat = 0;
    while (i + repeat + 1 < segments.length) {
      const prev = segments[i + repeat]!;
      const next = segments[i + repeat + 1]!;
      if (next.d !== first.d || next.t !== prev.t + prev.d) break;
      repeat++;
    }
    out.push(`          <S t="${first.t}" d="${first.d}"${repeat > 0 ? ` r="${repeat}"` : ''}/>`);
    i += repeat + 1;
  }
  return out.join('\n');
}

/** The manifest at `now` (wall-clock ms); `segments` is the store's list, non-empty. */
export function manifest(store: DashStore, segments: readonly DashSegment[], now: number): string {
  const { header } = store;
  const timing = timingOf(store, segments);
  const windowMs = store.maxAgeMs;
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  let bytes = 0;
  for (const s of segments) bytes += s.size;
  const spanS = (last.t + last.d - first.t) / header.timescale;
  const bandwidth = Math.max(1, Math.round((bytes * 8) / Math.max(spanS, 0.001)));
  const media = header.tracks.filter((t) => t.codecs !== '');
  const codecs = media.map((t) => t.codecs).join(',');
  const video = media.find((t) => t.type === 'video');
  const audio = media.find((t) => t.type === 'audio');
  const size = video?.width && video.height ? ` width="${video.width}" height="${video.height}"` : '';
  const rate = audio?.sampleRate ? ` audioSamplingRate="${Math.round(audio.sampleRate)}"` : '';
  // A player starts this far behind the newest segment: three segments, within the window.
  const delayMs = Math.max(timing.maxMs, Math.min(3 * timing.maxMs, windowMs - timing.maxMs));
  return `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic"
    availabilityStartTime="${new Date(store.anchor ?? now).toISOString()}"
    publishTime="${new Date(now).toISOString()}"
    minimumUpdatePeriod="${duration(Math.max(500, timing.newestMs))}"
    timeShiftBufferDepth="${duration(windowMs)}"
    suggestedPresentationDelay="${duration(delayMs)}"
    maxSegmentDuration="${duration(timing.maxMs)}"
    minBufferTime="${duration(timing.maxMs)}">
  <Period id="${store.generation}" start="PT0S">
    <AdaptationSet id="0" contentType="${video ? 'video' : 'audio'}" mimeType="${header.mimeType}" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="${header.timescale}" initialization="init.webm" media="$Time$.webm">
        <SegmentTimeline>
${timeline(segments)}
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="0" codecs="${attr(codecs)}" bandwidth="${bandwidth}"${size}${rate}/>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="${new Date(now).toISOString()}"/>
</MPD>
`;
}
