/* global document, fetch, URLSearchParams, history, location, window */
/**
 * The explorer (/explore): a search over stored events through the public API.
 *
 * - The filters (q, topic, source, range or since/until) live in the page URL: a search replaces
 *   the URL's query, so the address can be shared and the back button returns to a search.
 * - The histogram (GET events/histogram, same filters) is drawn as bars, one per bucket; clicking
 *   a bar narrows the range to that bucket.
 * - Results (GET events, newest first) show time, topic, source and a one-line payload with the
 *   search terms highlighted; a click expands the pretty-printed payload. "Load more" follows the
 *   x-next-cursor of the previous page. Payloads are read with parseExact, as the live tail reads
 *   them, so a number keeps every digit it was stored with.
 * - "live" switches to the tail (events/stream) with the same topic, source and q.
 *
 * Every text from the API reaches the page through textContent, never as HTML.
 */
import { askForKey, AuthError, authHeaders, errorMessage, getJson, keyEvents } from './api.js';
import { $, messageOf, numbers, setText, shortTime } from './dom.js';
import { parseExact } from './exact-json.js';
import { LiveTail } from './live-tail.js';
import { highlighted, searchTerms } from './highlight.js';

const PAGE = 50;
/** Most bars drawn: the interval is the smallest that keeps the range under this. */
const MAX_BARS = 150;
const RANGES = {
  '15m': 900_000,
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 604_800_000,
  '30d': 2_592_000_000,
};
const INTERVALS = [
  ['1m', 60_000],
  ['5m', 300_000],
  ['1h', 3_600_000],
  ['1d', 86_400_000],
];
/** "all time" in the histogram: this far back from now. */
const ALL_TIME_MS = 5 * 365 * 86_400_000;

/** The search as the URL says: {q, topic, source, range, since, until}. */
function readUrl() {
  const p = new URLSearchParams(location.search);
  return {
    q: p.get('q') ?? '',
    topic: p.get('topic') ?? '',
    source: p.get('source') ?? '',
    range: p.get('range') ?? (p.has('since') ? 'custom' : '24h'),
    since: p.get('since') ?? '',
    until: p.get('until') ?? '',
  };
}

function writeUrl(search) {
  const p = new URLSearchParams();
  for (const [name, value] of Object.entries(search)) {
    if (value !== '' && !(name === 'range' && value === '24h')) p.set(name, value);
  }
  if (search.range !== 'custom') {
    p.delete('since');
    p.delete('until');
  }
  const text = p.toString();
  const url = text === '' ? location.pathname : `${location.pathname}?${text}`;
  if (url !== `${location.pathname}${location.search}`) history.pushState(null, '', url);
}

/** The API query of a search: filters plus the absolute time range it covers now. */
function apiFilters(search) {
  const filters = {};
  if (search.q.trim() !== '') filters.q = search.q;
  if (search.topic !== '') filters.topic = search.topic;
  if (search.source !== '') filters.source = search.source;
  if (search.range === 'custom') {
    if (search.since !== '') filters.since = search.since;
    if (search.until !== '') filters.until = search.until;
  } else if (search.range !== 'all') {
    const now = Date.now();
    filters.since = new Date(now - RANGES[search.range]).toISOString();
    filters.until = new Date(now + 1000).toISOString();
  }
  return filters;
}

const state = { search: readUrl(), filters: {}, cursor: null, request: 0 };

function showForm(search) {
  $('explore-q').value = search.q;
  $('explore-source').value = search.source;
  ensureTopicOption(search.topic);
  $('explore-topic').value = search.topic;
  $('explore-range').value = search.range;
}

function ensureTopicOption(topic) {
  const select = $('explore-topic');
  if (topic === '' || [...select.options].some((o) => o.value === topic)) return;
  const option = document.createElement('option');
  option.value = topic;
  option.textContent = topic;
  select.append(option);
}

async function loadTopics() {
  try {
    for (const t of await getJson('topics')) ensureTopicOption(t.topic);
    $('explore-topic').value = state.search.topic;
  } catch (error) {
    if (error instanceof AuthError) askForKey(error.message);
  }
}

function showError(error) {
  if (error instanceof AuthError) return askForKey(error.message);
  const element = $('explore-error');
  element.textContent = messageOf(error);
  element.hidden = false;
}

/** Runs the search in state.search: the histogram and the first page. */
async function run() {
  const request = ++state.request;
  state.filters = apiFilters(state.search);
  state.cursor = null;
  $('explore-error').hidden = true;
  $('explore-results').replaceChildren();
  $('explore-empty').hidden = true;
  $('explore-more').hidden = true;
  setText('explore-summary', 'Searching…');
  try {
    await Promise.all([drawHistogram(request), loadPage(request)]);
  } catch (error) {
    if (request === state.request) showError(error);
  }
}

function query(params) {
  const p = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) p.set(name, value);
  return p.toString();
}

async function drawHistogram(request) {
  const since = Date.parse(state.filters.since ?? new Date(Date.now() - ALL_TIME_MS).toISOString());
  const until = Date.parse(state.filters.until ?? new Date(Date.now() + 1000).toISOString());
  const [interval, width] =
    INTERVALS.find(([, ms]) => (until - since) / ms <= MAX_BARS) ?? INTERVALS.at(-1);
  const answer = await getJson(
    `events/histogram?${query({
      ...state.filters,
      since: new Date(since).toISOString(),
      until: new Date(until).toISOString(),
      interval,
    })}`,
  );
  if (request !== state.request) return;
  // "all time": from the first bucket holding events.
  let buckets = answer.buckets;
  if (state.search.range === 'all') {
    const first = buckets.findIndex((b) => b.count > 0);
    buckets = first < 0 ? buckets.slice(-MAX_BARS) : buckets.slice(first);
  }
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const total = buckets.reduce((n, b) => n + b.count, 0);
  $('explore-histogram').replaceChildren(
    ...buckets.map((b) => {
      const bar = document.createElement('button');
      bar.type = 'button';
      bar.className = 'bar';
      bar.dataset.start = b.start;
      bar.dataset.count = String(b.count);
      bar.title = `${shortTime(b.start)} · ${numbers.format(b.count)} events (click to zoom in)`;
      bar.style.setProperty('--h', `${(100 * b.count) / max}%`);
      bar.addEventListener('click', () =>
        zoom(b.start, new Date(Date.parse(b.start) + width).toISOString()),
      );
      return bar;
    }),
  );
  setText('histogram-from', shortTime(buckets[0]?.start ?? ''));
  setText('histogram-to', `${shortTime(buckets.at(-1)?.start ?? '')} · ${interval} buckets`);
  setText(
    'explore-summary',
    `${numbers.format(total)} matching events${state.search.q.trim() === '' ? '' : ` for ${state.search.q.trim()}`}`,
  );
}

function zoom(since, until) {
  search({ ...state.search, range: 'custom', since, until });
}

async function loadPage(request) {
  const params = { ...state.filters, limit: String(PAGE) };
  if (state.cursor !== null) params.after = state.cursor;
  const response = await fetch(`events?${query(params)}`, {
    headers: authHeaders(),
    cache: 'no-store',
  });
  if (response.status === 401 || response.status === 403) {
    throw new AuthError(await errorMessage(response));
  }
  if (!response.ok) throw new Error(await errorMessage(response));
  // Not response.json(): it would round 2868860079149422351 to a double.
  const events = parseExact(await response.text());
  if (request !== state.request) return;
  state.cursor = response.headers.get('x-next-cursor');
  const terms = searchTerms(state.search.q);
  $('explore-results').append(...events.map((e) => resultRow(e, terms)));
  $('explore-empty').hidden = $('explore-results').childElementCount > 0;
  $('explore-more').hidden = state.cursor === null;
}

/** A result: one line (time, topic, source, payload with the terms marked); click to expand. */
function resultRow(event, terms) {
  const li = document.createElement('li');
  li.className = 'result';
  li.dataset.eventId = event.event_id;
  const line = document.createElement('button');
  line.type = 'button';
  line.className = 'result-line';
  line.setAttribute('aria-expanded', 'false');
  const span = (className, nodes) => {
    const element = document.createElement('span');
    element.className = className;
    element.append(...nodes);
    return element;
  };
  const payload = JSON.stringify(event.payload ?? {});
  line.append(
    span('time', [shortTime(event.timestamp)]),
    span('topic', [event.topic]),
    span('source', highlighted(event.source, terms)),
    span('payload', highlighted(payload.slice(0, 400), terms)),
  );
  const pre = document.createElement('pre');
  pre.className = 'payload-full';
  pre.hidden = true;
  line.addEventListener('click', () => {
    if (pre.childNodes.length === 0) {
      pre.append(...highlighted(JSON.stringify(event.payload ?? {}, null, 2), terms));
    }
    pre.hidden = !pre.hidden;
    line.setAttribute('aria-expanded', String(!pre.hidden));
  });
  li.append(line, pre);
  return li;
}

const live = new LiveTail({
  elements: {
    list: 'explore-live-list',
    empty: 'explore-live-empty',
    count: 'explore-live-count',
    state: 'explore-live-state',
  },
  row: (event) => resultRow(event, searchTerms(state.search.q)),
});

function setLive(on) {
  $('explore-live').checked = on;
  for (const id of ['explore-results', 'explore-more', 'explore-empty']) {
    if (on) $(id).hidden = true;
  }
  $('explore-live-list').hidden = !on;
  if (on) {
    const { q, topic, source } = state.filters;
    const filters = {};
    if (q !== undefined) filters.q = q;
    if (topic !== undefined) filters.topic = topic;
    if (source !== undefined) filters.source = source;
    live.setFilters(filters);
  } else {
    live.stop('off');
    $('explore-live-list').replaceChildren();
    $('explore-live-empty').hidden = true;
    setText('explore-live-count', '');
    $('explore-results').hidden = false;
    void run();
  }
}

function search(next) {
  state.search = next;
  writeUrl(next);
  showForm(next);
  if ($('explore-live').checked) {
    state.filters = apiFilters(next);
    setLive(true);
  } else void run();
}

$('explore-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const range = $('explore-range').value;
  search({
    q: $('explore-q').value,
    topic: $('explore-topic').value,
    source: $('explore-source').value.trim(),
    range,
    since: range === 'custom' ? state.search.since : '',
    until: range === 'custom' ? state.search.until : '',
  });
});
$('explore-range').addEventListener('change', () => $('explore-form').requestSubmit());
$('explore-topic').addEventListener('change', () => $('explore-form').requestSubmit());
$('explore-more').addEventListener('click', () => {
  loadPage(state.request).catch(showError);
});
$('explore-live').addEventListener('change', (event) => setLive(event.target.checked));
window.addEventListener('popstate', () => {
  state.search = readUrl();
  showForm(state.search);
  void run();
});

keyEvents.needed = () => live.stop('needs key');
keyEvents.entered = () => {
  void loadTopics();
  void run();
};

showForm(state.search);
void loadTopics();
void run();
