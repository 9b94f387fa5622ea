/**
 * The dashboard a browser gets at `/`: plain HTML, CSS and JavaScript from
 * packages/edge/static, read once when the edge starts (a few KiB; no build
 * step). The page polls /stats itself; the stream list is also rendered
 * here, for browsers without JavaScript.
 */
import { readFileSync } from 'node:fs';
import type { LiveStream } from './liveStream.js';

const STATIC = new URL('../../static/', import.meta.url);

function load(file: string): string {
  return readFileSync(new URL(file, STATIC), 'utf8');
}

const PAGE = load('index.html');
const ICON = load('favicon.svg');

/** Files the page loads, by path: the favicon answers /favicon.ico too, so no browser's guess gets a 404. */
const ASSETS: ReadonlyMap<string, { body: string; type: string }> = new Map([
  ['/dashboard.js', { body: load('dashboard.js'), type: 'text/javascript; charset=utf-8' }],
  ['/dashboard.css', { body: load('dashboard.css'), type: 'text/css; charset=utf-8' }],
  ['/favicon.svg', { body: ICON, type: 'image/svg+xml' }],
  ['/favicon.ico', { body: ICON, type: 'image/svg+xml' }],
]);

export function dashboardAsset(path: string): { body: string; type: string } | undefined {
  return ASSETS.get(path);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page, with the live streams linked in its no-script list. */
export function dashboardPage(streams: Iterable<LiveStream>): string {
  const items = [...streams].map((s) => {
    const url = `/live/${encodeURIComponent(s.name)}`;
    const codecs = s.tracks.map((t) => `${t.type} ${t.codec}`).join(', ');
    return `<li><a href="${escapeHtml(url)}">${escapeHtml(s.name)}</a> (${escapeHtml(s.docType)}: ${escapeHtml(codecs)})</li>`;
  });
  return PAGE.replace('{{streams}}', () => items.join('\n') || '<li>No live streams.</li>');
}
