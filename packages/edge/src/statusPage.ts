import type { ServerStats } from '@mkvcast/shared';
import type { LiveStream } from './liveStream.js';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page a browser gets at `/`: the live streams, each playable in a <video>. */
export function statusPage(streams: Iterable<LiveStream>, stats: ServerStats | null): string {
  const rows = [...streams]
    .map((s) => {
      const url = `/live/${encodeURIComponent(s.name)}`;
      const codecs = s.tracks.map((t) => `${t.type} ${t.codec}`).join(', ');
      const players = stats?.playersByStream[s.name] ?? s.players.size;
      return (
        `<li><a href="${url}">${escapeHtml(s.name)}</a> — ${escapeHtml(s.docType)}, ${escapeHtml(codecs)}, ` +
        `${players} player(s)<br><video src="${url}" controls muted autoplay width="480"></video></li>`
      );
    })
    .join('\n');
  const summary = stats
    ? `${stats.players} of ${stats.capacity} player slots in use on ${stats.pids.edges.length} edge(s)`
    : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>mkvcast</title></head>
<body><h1>mkvcast</h1><p>${summary}</p>
<ul>${rows || '<li>No live streams.</li>'}</ul>
</body></html>
`;
}
