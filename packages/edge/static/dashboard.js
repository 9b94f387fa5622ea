// The dashboard at `/`: every stream with a player, every edge, refreshed once a second.
// Plain browser JavaScript, served as is (no build step).

/**
 * Where the figures come from, in one place: today the whole-server `/stats`;
 * `read` turns an answer into what the page shows, so another source (the
 * Control API) needs only a new entry here.
 */
const FEED = {
  url: '/stats',
  intervalMs: 1000,
  read(json) {
    return {
      summary: {
        players: json.players ?? 0,
        capacity: json.capacity ?? 0,
        uptimeS: json.uptimeS ?? 0,
        restarts: json.restarts ?? 0,
        latencyP99: json.latencyMs?.p99,
      },
      streams: json.streams ?? [],
      edges: json.edges ?? [],
    };
  },
};

/**
 * Players playing at once. A browser opens at most 6 HTTP/1.1 connections to one server, and
 * a live stream never gives its connection back: past 5, the figures' own requests would wait
 * for ever. Other streams get a Play button (which stops the player started longest ago).
 */
const MAX_PLAYING = 4;

/** A player that shows no new frame for this long is reported stalled. */
const STALL_MS = 5000;
/** A player whose connection ended tries again after this long (the stream may be back). */
const RETRY_MS = 3000;

/** Matroska CodecIDs (RFC 9559 §5.1.4.1.21, the codec mappings) as `codecs=` parameters (RFC 6381) for canPlayType. */
const CODEC_PARAMS = {
  V_VP8: 'vp8',
  V_VP9: 'vp9',
  V_AV1: 'av01.0.04M.08',
  'V_MPEG4/ISO/AVC': 'avc1.42E01E',
  'V_MPEGH/ISO/HEVC': 'hvc1.1.6.L93.B0',
  'V_MPEG4/ISO/ASP': 'mp4v.20.9',
  V_THEORA: 'theora',
  A_OPUS: 'opus',
  A_VORBIS: 'vorbis',
  A_AAC: 'mp4a.40.2',
  A_FLAC: 'flac',
  'A_MPEG/L3': 'mp3',
};

const MEDIA_ERRORS = { 1: 'aborted', 2: 'network error', 3: 'decode error', 4: 'format or codec not supported' };

const cards = new Map();
let failures = 0;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function kbits(bitsPerSecond) {
  return `${Math.round((bitsPerSecond ?? 0) / 1000).toLocaleString()} kbit/s`;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds ?? 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function streamUrl(name) {
  return `/live/${encodeURIComponent(name)}`;
}

function describeTracks(tracks) {
  return tracks
    .map((t) => {
      if (t.type === 'video' && t.width && t.height) return `${t.codec} ${t.width}×${t.height}`;
      if (t.type === 'audio' && t.sampleRate) return `${t.codec} ${Math.round(t.sampleRate / 100) / 10} kHz${t.channels ? ` ${t.channels} ch` : ''}`;
      return `${t.type} ${t.codec}`;
    })
    .join(', ');
}

/** What this browser says it cannot play of a stream, before trying: a sentence, or '' when it expects to play it. */
function playability(video, stream) {
  const container = stream.docType === 'webm' ? 'video/webm' : 'video/x-matroska';
  const missing = [];
  for (const track of stream.tracks ?? []) {
    if (track.type !== 'video' && track.type !== 'audio') continue;
    const param = CODEC_PARAMS[track.codec];
    // A codec this page cannot name is tried anyway: the error watch reports what fails.
    if (!param) continue;
    if (video.canPlayType(`${container}; codecs="${param}"`) === '') {
      // Decoding H.264/AAC at all is another question than decoding it from Matroska.
      const elsewhere = window.MediaSource?.isTypeSupported?.(`${track.type}/mp4; codecs="${param}"`);
      missing.push(elsewhere ? `${track.codec} in ${container}` : track.codec);
    }
  }
  return missing.length ? `This browser cannot play ${missing.join(', ')}: open ${streamUrl(stream.name)} in a media player (mpv, VLC, ffplay).` : '';
}

function makeCard(stream) {
  const card = el('article', { class: 'stream', 'data-stream': stream.name });
  const title = el('h3');
  title.append(el('a', { href: streamUrl(stream.name) }, stream.name));
  // The same stream through DASH and dash.js (docs/dash.md).
  title.append(' ', el('a', { href: `/player/dash.html?stream=${encodeURIComponent(stream.name)}`, class: 'dash' }, 'DASH'));
  const video = el('video', { controls: '', muted: '', autoplay: '', playsinline: '', preload: 'auto' });
  video.muted = true; // the attribute alone does not mute a script-made element, and autoplay needs it
  const note = el('p', { class: 'note', 'data-field': 'note', role: 'status' });
  const dl = el('dl');
  const fields = {};
  for (const [key, label] of [
    ['codecs', 'Tracks'],
    ['players', 'Players'],
    ['bitrateIn', 'In'],
    ['bitrateOut', 'Out'],
    ['uptime', 'Uptime'],
    ['input', 'Input'],
    ['frames', 'Here'],
  ]) {
    dl.append(el('dt', {}, label));
    fields[key] = el('dd', { 'data-field': key });
    dl.append(fields[key]);
  }
  const button = el('button', { type: 'button', hidden: '' }, 'Play here');
  card.append(title, video, button, note, dl);
  // startedAt: when its player connected (0: not playing); queued: waiting for a free player.
  const state = { card, video, button, note, fields, stream, lastTime: -1, lastMoved: Date.now(), retry: null, problem: '', startedAt: 0, queued: false };
  watch(state);
  button.addEventListener('click', () => connect(state, true));
  const refusal = playability(video, stream);
  if (refusal) setProblem(state, refusal);
  else connect(state, false);
  return state;
}

function playing() {
  return [...cards.values()].filter((s) => s.startedAt > 0);
}

/** Connects a card's player; past MAX_PLAYING, only when asked (`force`), stopping the oldest. */
function connect(state, force) {
  const others = playing().filter((s) => s !== state);
  if (others.length >= MAX_PLAYING) {
    if (!force) {
      state.queued = true;
      state.button.hidden = false;
      setProblem(state, '', `Not playing here: at most ${MAX_PLAYING} players at once on this page.`);
      return;
    }
    disconnect(others.sort((x, y) => x.startedAt - y.startedAt)[0]);
  }
  state.queued = false;
  state.button.hidden = true;
  state.startedAt = Date.now();
  setProblem(state, '');
  state.video.src = streamUrl(state.stream.name);
  state.video.play().catch(() => undefined);
}

/** Closes a player's connection (its slot is free at once) and offers the Play button. */
function disconnect(state) {
  clearTimeout(state.retry);
  state.retry = null;
  state.startedAt = 0;
  state.video.removeAttribute('src');
  state.video.load();
  state.button.hidden = false;
  setProblem(state, '', 'Stopped: another stream plays here.');
}

/** Media events: errors and the end of a connection are said plainly; a lost connection is tried again. */
function watch(state) {
  const { video } = state;
  video.addEventListener('error', () => {
    const err = video.error;
    if (!err || !state.startedAt) return;
    setProblem(state, `Cannot play: ${MEDIA_ERRORS[err.code] ?? `error ${err.code}`}${err.message ? ` (${err.message})` : ''}.`);
    retryLater(state);
  });
  video.addEventListener('ended', () => retryLater(state));
  video.addEventListener('playing', () => setProblem(state, ''));
}

function retryLater(state) {
  if (state.retry || !state.startedAt) return;
  state.retry = setTimeout(() => {
    state.retry = null;
    if (!cards.has(state.stream.name) || !state.startedAt) return;
    state.video.src = streamUrl(state.stream.name);
    state.video.play().catch(() => undefined);
  }, RETRY_MS);
}

/** The card's note: a problem (in red), or else a plain remark. */
function setProblem(state, text, remark = '') {
  state.problem = text;
  state.note.textContent = text || remark;
  state.note.classList.toggle('bad', text !== '');
}

/** Frames decoded here, and a stall said out loud: a player that shows the same frame for STALL_MS. */
function checkPlayback(state, now) {
  const { video } = state;
  if (!state.startedAt) return;
  const quality = video.getVideoPlaybackQuality?.();
  const frames = quality ? `${quality.totalVideoFrames} frames decoded, ${quality.droppedVideoFrames} dropped` : '';
  state.fields.frames.textContent = `${frames}${frames ? ', ' : ''}at ${video.currentTime.toFixed(1)} s`;
  if (video.currentTime !== state.lastTime || video.paused) {
    state.lastTime = video.currentTime;
    state.lastMoved = now;
    if (state.problem.startsWith('Stalled')) setProblem(state, '');
    return;
  }
  if (now - state.lastMoved < STALL_MS || state.problem) return;
  const ahead = video.buffered.length ? video.buffered.start(0) - video.currentTime : 0;
  setProblem(
    state,
    ahead > 1
      ? `Stalled: frames are buffered from ${video.buffered.start(0).toFixed(1)} s but the clock is at ${video.currentTime.toFixed(1)} s.`
      : `Stalled: no new frame for ${Math.round((now - state.lastMoved) / 1000)} s (${video.networkState === 2 ? 'waiting for data' : 'not loading'}).`,
  );
}

function updateCard(state, stream) {
  state.stream = stream;
  const f = state.fields;
  f.codecs.textContent = `${stream.docType}: ${describeTracks(stream.tracks ?? [])}`;
  f.players.textContent = String(stream.players ?? 0);
  f.bitrateIn.textContent = kbits(stream.bitrateIn);
  f.bitrateOut.textContent = kbits(stream.bitrateOut);
  f.uptime.textContent = duration(stream.uptimeS);
  f.input.textContent = stream.input ? `${stream.input.kind}: ${stream.input.label}` : 'none (waiting for its input)';
}

function render(view) {
  const s = view.summary;
  document.getElementById('summary').textContent =
    `${s.players} of ${s.capacity} player slots in use · ${view.streams.length} stream(s) · ${view.edges.length} edge(s) · ` +
    `up ${duration(s.uptimeS)} · ${s.restarts} restart(s)` +
    (s.latencyP99 !== undefined ? ` · latency p99 ${s.latencyP99} ms` : '');

  const list = document.getElementById('streams');
  document.getElementById('static-list')?.remove();
  const live = new Set();
  const byName = [...view.streams].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  for (const stream of byName) {
    live.add(stream.name);
    let state = cards.get(stream.name);
    if (!state) {
      state = makeCard(stream);
      cards.set(stream.name, state);
      // Cards in name order, wherever a stream appears in the feed.
      const next = [...list.querySelectorAll('.stream')].find((c) => c.dataset.stream > stream.name);
      list.insertBefore(state.card, next ?? null);
    }
    updateCard(state, stream);
  }
  for (const [name, state] of cards) {
    if (live.has(name)) continue;
    disconnect(state);
    state.card.remove();
    cards.delete(name);
  }
  // A slot freed by a stream that ended goes to the next stream waiting.
  for (const state of cards.values()) {
    if (playing().length >= MAX_PLAYING) break;
    if (state.queued) connect(state, false);
  }
  if (view.streams.length === 0 && !list.querySelector('.empty')) list.append(el('p', { class: 'empty' }, 'No live streams.'));
  if (view.streams.length > 0) list.querySelector('.empty')?.remove();

  const body = document.querySelector('#edges tbody');
  body.replaceChildren(
    ...view.edges.map((e) => {
      const row = el('tr', { 'data-edge': String(e.edgeId) });
      for (const value of [e.edgeId, e.pid ?? 'restarting', e.players, e.connections, e.restarts ?? 0]) row.append(el('td', {}, String(value)));
      return row;
    }),
  );
}

async function poll() {
  try {
    const response = await fetch(FEED.url, { cache: 'no-store' });
    if (!response.ok) throw new Error(`${FEED.url}: HTTP ${response.status}`);
    render(FEED.read(await response.json()));
    failures = 0;
    document.body.classList.remove('stale');
  } catch (err) {
    failures++;
    document.body.classList.add('stale');
    document.getElementById('summary').textContent = `Cannot reach the server (${err.message}); trying again.`;
  }
  const now = Date.now();
  for (const state of cards.values()) checkPlayback(state, now);
  // Backs off while the server is away, up to 10 s.
  setTimeout(poll, Math.min(10_000, FEED.intervalMs * 2 ** Math.min(failures, 4)));
}

document.getElementById('stats-link').href = FEED.url;
document.getElementById('stats-link').textContent = FEED.url;
poll();
