/* global AbortController, EventSource, ResizeObserver, TextDecoderStream, URLSearchParams */
/* global clearTimeout, document, fetch, getComputedStyle, sessionStorage, setTimeout */
/**
 * The dashboard's script: a client of the public JSON API, nothing more.
 *
 * - Every POLL_MS it reads /health (open), /stats and /queue/stats, updates the counters and adds
 *   a point to the two charts; /topics is read again when the counters moved.
 * - Deduplication: /conflicts is read again when the conflicting_duplicates counter moved; the
 *   topic selected in the topics table has its /topics/{topic}/dedup read when the counters moved;
 *   /stats/verify, which counts whole tables, every VERIFY_MS at most.
 * - The live tail subscribes to /events/stream. Without a key it uses EventSource, which resumes
 *   by itself with Last-Event-ID; with a key (EventSource cannot send headers) it reads the same
 *   stream with fetch and resumes with the Last-Event-ID header itself.
 * - A 401 or 403 from a read route shows a form for an API key, kept in sessionStorage only.
 *
 * Every text from the API reaches the page through textContent, never as HTML.
 */
import uPlot from './vendor/uPlot.esm.js';

const POLL_MS = 1000;
/** Points kept on the charts: five minutes at one per poll. */
const HISTORY_POINTS = 300;
/** Topics are read again at least this often even when the counters stand still. */
const TOPICS_REFRESH_MS = 10_000;
const TOPICS_SHOWN = 500;
/** Events kept in the live tail; older rows leave the DOM. */
const TAIL_ROWS = 100;
const TAIL_FLUSH_MS = 100;
const STREAM_RETRY_MS = 1000;
/**
 * Verification counts whole tables: it is asked for every VERIFY_MS at most, and then only after
 * VERIFY_IDLE_FACTOR times as long as it took, so a slow check of a big store loads it ≤ 5%.
 */
const VERIFY_MS = 5000;
const VERIFY_IDLE_FACTOR = 20;
const SOURCES_SHOWN = 100;
const CONFLICTS_SHOWN = 10;
/** The API keeps the first 200 characters of each side's payload. */
const PAYLOAD_START_CHARS = 200;
const KEY_STORAGE = 'log-aggregator.api-key';
const CHART_HEIGHT = 200;

const $ = (id) => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`dashboard: #${id} is missing`);
  return element;
};
const numbers = new Intl.NumberFormat('en-US');
const rates = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const percents = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

function setText(id, text) {
  const element = $(id);
  if (element.textContent !== text) element.textContent = text;
}

function setPill(id, state, text) {
  const element = $(id);
  element.dataset.state = state;
  if (element.textContent !== text) element.textContent = text;
}

/** `2024-05-01T12:00:00.000Z` → `2024-05-01 12:00:00`. */
function shortTime(iso) {
  return typeof iso === 'string'
    ? iso.replace('T', ' ').replace(/(\.\d+)?(Z|[+-]\d\d:\d\d)$/, '')
    : '';
}

/** A delay in milliseconds, to the precision a person reads. */
function delay(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${rates.format(ms / 1000)} s`;
  return duration(ms / 1000);
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

// ---- API key ----------------------------------------------------------------------------------

const auth = {
  key: readStoredKey(),
  /** True while the read routes answered 401/403 and no new key was entered since. */
  waiting: false,
};

function readStoredKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

function storeKey(key) {
  try {
    if (key === '') sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode, policy): the key lasts as long as the page.
  }
}

function authHeaders() {
  return auth.key === '' ? {} : { authorization: `Bearer ${auth.key}` };
}

class AuthError extends Error {}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body?.message === 'string') return body.message;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`;
}

async function getJson(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: 'no-store' });
  if (response.status === 401 || response.status === 403) {
    throw new AuthError(await errorMessage(response));
  }
  // /health answers 503 with the same body when something is down: that is its answer.
  if (!response.ok && !(path === 'health' && response.status === 503)) {
    throw new Error(`${path}: ${await errorMessage(response)}`);
  }
  return response.json();
}

function askForKey(message) {
  const hadKey = auth.key !== '';
  auth.waiting = true;
  auth.key = '';
  storeKey('');
  tail.stop('needs key');
  const form = $('key-form');
  // Without a key the server's message only says a key is needed, which the form says already.
  setText('key-message', hadKey ? message : '');
  if (form.hidden) {
    form.hidden = false;
    $('key-input').focus();
  }
}

$('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('key-input');
  const key = input.value.trim();
  if (key === '') return;
  input.value = '';
  auth.key = key;
  auth.waiting = false;
  storeKey(key);
  $('key-form').hidden = true;
  setText('key-message', '');
  verification.next = 0;
  pollNow();
});

// ---- charts -----------------------------------------------------------------------------------

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** Axis steps of 1, 2, 5, 10, 20, 50…: a count of events has no fractions. */
const INTEGER_STEPS = Array.from(
  { length: 27 },
  (_, i) => [1, 2, 5][i % 3] * 10 ** Math.floor(i / 3),
);

function makeChart(element, series, { integers = false } = {}) {
  const axis = {
    stroke: cssColor('--muted'),
    grid: { stroke: cssColor('--grid'), width: 1 },
    ticks: { stroke: cssColor('--grid'), width: 1 },
  };
  const width = () => Math.max(Math.floor(element.clientWidth), 280);
  const chart = new uPlot(
    {
      width: width(),
      height: CHART_HEIGHT,
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [axis, { ...axis, size: 64, ...(integers ? { incrs: INTEGER_STEPS } : {}) }],
      series: [
        { label: 'time', value: '{HH}:{mm}:{ss}' },
        ...series.map((s) => ({
          label: s.label,
          stroke: cssColor(s.color),
          width: 2,
          points: { show: false },
          value: (_u, v) => (v === null || v === undefined ? '–' : s.format(v)),
        })),
      ],
    },
    [[], ...series.map(() => [])],
    element,
  );
  let lastWidth = width();
  new ResizeObserver(() => {
    if (width() === lastWidth) return;
    lastWidth = width();
    chart.setSize({ width: lastWidth, height: CHART_HEIGHT });
  }).observe(element);
  return chart;
}

const points = { time: [], received: [], unique: [], duplicates: [], queue: [] };

const rateChart = makeChart($('rate-chart'), [
  { label: 'received/s', color: '--accent', format: (v) => rates.format(v) },
  { label: 'unique/s', color: '--unique', format: (v) => rates.format(v) },
  { label: 'duplicates/s', color: '--duplicate', format: (v) => rates.format(v) },
]);
const queueChart = makeChart(
  $('queue-chart'),
  [{ label: 'events queued', color: '--queue', format: (v) => numbers.format(v) }],
  { integers: true },
);

/** The counters of the previous poll, to turn totals into rates. */
let previous;

function addPoint(stats, queue) {
  const now = Date.now() / 1000;
  let received = null;
  let unique = null;
  let duplicates = null;
  // The server's uptime times the interval, so a slow poll does not read as a rate change; a
  // smaller uptime means the service restarted and the totals cannot be compared.
  if (previous !== undefined && stats.uptime_seconds > previous.uptime_seconds) {
    const seconds = stats.uptime_seconds - previous.uptime_seconds;
    const rate = (total, before) => Math.max(0, (total - before) / seconds);
    received = rate(stats.received, previous.received);
    unique = rate(stats.unique_processed, previous.unique_processed);
    duplicates = rate(stats.duplicate_dropped, previous.duplicate_dropped);
  }
  previous = stats;
  points.time.push(now);
  points.received.push(received);
  points.unique.push(unique);
  points.duplicates.push(duplicates);
  points.queue.push(queue.queue_size);
  if (points.time.length > HISTORY_POINTS) {
    for (const values of Object.values(points)) values.shift();
  }
  rateChart.setData([points.time, points.received, points.unique, points.duplicates]);
  queueChart.setData([points.time, points.queue]);
  const peak = (values) => values.reduce((max, v) => (v !== null && v > max ? v : max), 0);
  const over = `over ${duration(now - (points.time[0] ?? now))}`;
  setText(
    'rate-summary',
    `· now ${rates.format(received ?? 0)}/s, peak ${rates.format(peak(points.received))}/s ${over}`,
  );
  setText(
    'queue-summary',
    `· now ${numbers.format(queue.queue_size)}, peak ${numbers.format(peak(points.queue))} ${over}`,
  );
}

// ---- counters, topics, health -----------------------------------------------------------------

function showCounters(stats, queue) {
  setText('received', numbers.format(stats.received));
  setText('unique', numbers.format(stats.unique_processed));
  setText('duplicates', numbers.format(stats.duplicate_dropped));
  setText('dedup-rate', `${percents.format(stats.dedup_rate_percent)} %`);
  setText('conflicting', numbers.format(stats.conflicting_duplicates ?? 0));
  setText('rejected', numbers.format(stats.rejected ?? 0));
  setText('expired', numbers.format(stats.expired ?? 0));
  setText('queue-size', numbers.format(queue.queue_size));
  const workers = queue.workers_enabled
    ? `${queue.worker_count} worker loops here`
    : 'no workers here';
  setText(
    'queue-detail',
    `${numbers.format(queue.queue_messages)} requests · ${queue.queue_type} · ${workers}`,
  );
}

const topicsSeen = { received: -1, at: 0 };

function topicsDue(stats) {
  return stats.received !== topicsSeen.received || Date.now() - topicsSeen.at > TOPICS_REFRESH_MS;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

/** A row spanning the whole table, for "nothing here" and "… and N more". */
function noteRow(text, columns) {
  const tr = document.createElement('tr');
  tr.className = 'empty';
  const td = cell(text);
  td.colSpan = columns;
  tr.append(td);
  return tr;
}

/**
 * The topics table keeps one row element per topic and only rewrites the texts that changed, so
 * a focused topic button stays focused while the counters move.
 */
const topicTable = {
  rows: new Map(),
  empty: noteRow('No topic yet.', 7),
  more: noteRow('', 7),
};

function topicRow(topic) {
  let tr = topicTable.rows.get(topic);
  if (tr !== undefined) return tr;
  tr = document.createElement('tr');
  tr.dataset.topic = topic;
  const name = cell('', 'topic');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'topic-link';
  button.textContent = topic;
  button.title = 'Show its deduplication per source';
  name.append(button);
  tr.append(
    name,
    cell('', 'num stored'),
    cell('', 'num received'),
    cell('', 'num unique'),
    cell('', 'num duplicates'),
    cell('', 'num expired'),
    cell('', 'time'),
  );
  topicTable.rows.set(topic, tr);
  return tr;
}

/** Sets the texts of a row's cells from `from` on, where they changed. */
function setCells(tr, texts, from = 0) {
  texts.forEach((text, i) => {
    const td = tr.children[from + i];
    if (td !== undefined && td.textContent !== text) td.textContent = text;
  });
}

function markSelected(tr) {
  const selected = tr.dataset.topic === dedupView.topic;
  tr.classList.toggle('selected', selected);
  tr.querySelector('button')?.setAttribute('aria-pressed', String(selected));
}

function showTopics(topics, received) {
  topicsSeen.received = received;
  topicsSeen.at = Date.now();
  const shown = topics.slice(0, TOPICS_SHOWN);
  const rows = shown.map((t) => {
    const tr = topicRow(t.topic);
    // From the second cell: the first holds the topic's button, and a row's topic never changes.
    setCells(
      tr,
      [
        numbers.format(t.events),
        numbers.format(t.received),
        numbers.format(t.unique_processed),
        numbers.format(t.duplicate_dropped),
        numbers.format(t.expired),
        shortTime(t.last_event_at),
      ],
      1,
    );
    markSelected(tr);
    return tr;
  });
  const names = new Set(shown.map((t) => t.topic));
  for (const topic of topicTable.rows.keys()) {
    if (!names.has(topic)) topicTable.rows.delete(topic);
  }
  if (rows.length === 0) rows.push(topicTable.empty);
  else if (topics.length > TOPICS_SHOWN) {
    setCells(topicTable.more, [
      `… and ${numbers.format(topics.length - TOPICS_SHOWN)} more topics`,
    ]);
    rows.push(topicTable.more);
  }
  const body = $('topics-body');
  // Moving a row out and back would take the focus from its button: only when the list changed.
  if (body.children.length !== rows.length || rows.some((tr, i) => body.children[i] !== tr)) {
    body.replaceChildren(...rows);
    $('topic-options').replaceChildren(
      ...shown.map((t) => {
        const option = document.createElement('option');
        option.value = t.topic;
        return option;
      }),
    );
  }
}

$('topics-body').addEventListener('click', (event) => {
  const tr = event.target?.closest?.('tr[data-topic]');
  if (tr !== null && tr !== undefined) selectTopic(tr.dataset.topic);
});

// ---- deduplication ----------------------------------------------------------------------------

/** The last /stats answer, for requests made between two polls. */
let latestStats;

/** The topic whose per-source figures are shown, and the counters they were read at. */
const dedupView = { topic: undefined, received: -1, conflicts: -1, request: 0 };

function selectTopic(topic) {
  if (topic === dedupView.topic) return;
  dedupView.topic = topic;
  dedupView.received = -1;
  for (const tr of topicTable.rows.values()) markSelected(tr);
  setText('dedup-topic', `· ${topic}`);
  $('dedup-body').replaceChildren(noteRow('Loading…', 8));
  if (!auth.waiting && latestStats !== undefined) void refreshDedup(latestStats);
}

function dedupDue(stats) {
  return (
    dedupView.topic !== undefined &&
    // A conflict settled after the fact moves conflicting_duplicates, not received.
    (stats.received !== dedupView.received ||
      (stats.conflicting_duplicates ?? 0) !== dedupView.conflicts)
  );
}

/** Reads the selected topic's figures; an answer for a topic no longer selected is dropped. */
async function refreshDedup(stats) {
  const topic = dedupView.topic;
  const request = ++dedupView.request;
  // "." and ".." would be resolved away as path segments by the browser, whatever the escaping.
  if (topic === '.' || topic === '..') {
    $('dedup-body').replaceChildren(noteRow('This topic name cannot be put in a URL path.', 8));
    return;
  }
  try {
    const answer = await getJson(`topics/${encodeURIComponent(topic)}/dedup`);
    if (request !== dedupView.request) return;
    dedupView.received = stats.received;
    dedupView.conflicts = stats.conflicting_duplicates ?? 0;
    showSources(answer.sources);
  } catch (error) {
    // Read again once a key is entered: the figures stay marked as not read.
    if (error instanceof AuthError) return askForKey(error.message);
    if (request !== dedupView.request) return;
    $('dedup-body').replaceChildren(noteRow(`Not read: ${messageOf(error)}`, 8));
  }
}

function showSources(sources) {
  const rows = sources.slice(0, SOURCES_SHOWN).map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.source = s.source;
    tr.append(
      cell(s.source, 'source'),
      cell(numbers.format(s.events), 'num'),
      cell(numbers.format(s.unique), 'num'),
      cell(numbers.format(s.duplicates), 'num'),
      cell(`${percents.format(s.duplicate_ratio * 100)} %`, 'num'),
      cell(numbers.format(s.conflicts), s.conflicts > 0 ? 'num conflicted' : 'num'),
      // The median comes from a histogram (within 19%), so it may read above the exact maximum,
      // which it cannot be; no copy yet means no delay at all.
      cell(
        s.median_delay_ms === null
          ? '–'
          : `≈ ${delay(Math.min(s.median_delay_ms, s.max_delay_ms))}`,
        'num',
      ),
      cell(s.duplicates === 0 ? '–' : delay(s.max_delay_ms), 'num'),
    );
    return tr;
  });
  if (rows.length === 0) rows.push(noteRow('No event in this topic.', 8));
  else if (sources.length > SOURCES_SHOWN) {
    rows.push(noteRow(`… and ${numbers.format(sources.length - SOURCES_SHOWN)} more sources`, 8));
  }
  $('dedup-body').replaceChildren(...rows);
}

/** The conflicting_duplicates counter the list was read at; -1 before the first read. */
const conflictsSeen = { count: -1 };

async function refreshConflicts(stats) {
  const count = stats.conflicting_duplicates ?? 0;
  const conflicts = await getJson(`conflicts?limit=${CONFLICTS_SHOWN}`);
  conflictsSeen.count = count;
  const rows = conflicts.map(conflictRow);
  if (rows.length === 0) rows.push(noteRow('No conflicting duplicate.', 7));
  $('conflicts-body').replaceChildren(...rows);
  setText(
    'conflicts-summary',
    count > conflicts.length
      ? `· newest ${numbers.format(conflicts.length)} of ${numbers.format(count)}`
      : '',
  );
}

/**
 * Which of timestamp, source and payload differ, as far as the two sides tell: the API keeps only
 * the first 200 characters of each payload, so equal starts of longer payloads say nothing about
 * the rest. Both sides differ somewhere (their hashes do), so when the timestamp and the source
 * are equal, the payloads differ after their first 200 characters.
 */
function differences(stored, duplicate, named) {
  const fields = [];
  const details = [];
  for (const field of ['timestamp', 'source']) {
    if (stored[field] !== duplicate[field]) {
      fields.push(field);
      details.push(`${field}: ${stored[field] ?? '?'} → ${duplicate[field] ?? '?'}`);
    }
  }
  // The server compared the full values when it recorded the conflict: its answer wins.
  if (Array.isArray(named) && named.length > 0) {
    return { text: named.join(', '), title: details.join('\n') };
  }
  const a = stored.payload_start;
  const b = duplicate.payload_start;
  if (a !== b) fields.push('payload');
  else if (a !== null && a.length >= PAYLOAD_START_CHARS) {
    fields.push(fields.length === 0 ? 'payload (after 200 chars)' : 'payload?');
    details.push('payload: the first 200 characters are equal; the rest is not kept');
  } else if (fields.length === 0) {
    // Possible when the stored copy's payload was since removed by retention (it reads as {}).
    fields.push('unknown');
    details.push('their hashes differ, but no difference shows in what is kept of them');
  }
  return { text: fields.join(', '), title: details.join('\n') };
}

function payloadCell(text) {
  const td = cell(text === null ? '–' : text.length >= PAYLOAD_START_CHARS ? `${text}…` : text);
  td.className = 'payload';
  if (text !== null) td.title = text;
  return td;
}

function conflictRow(c) {
  const tr = document.createElement('tr');
  tr.dataset.topic = c.topic;
  tr.dataset.eventId = c.event_id;
  const differs = differences(c.stored, c.duplicate, c.differs);
  const fields = cell(differs.text, 'fields');
  if (differs.title !== '') fields.title = differs.title;
  const topic = cell(c.topic, 'topic');
  topic.title = c.topic;
  const eventId = cell(c.event_id, 'event-id');
  eventId.title = c.event_id;
  tr.append(
    cell(shortTime(c.detected_at), 'time'),
    topic,
    eventId,
    fields,
    payloadCell(c.stored.payload_start),
    payloadCell(c.duplicate.payload_start),
    cell(c.rejected ? 'rejected' : 'dropped', c.rejected ? 'outcome rejected' : 'outcome'),
  );
  return tr;
}

const verification = { running: false, next: 0 };

function verifyDue() {
  return !verification.running && Date.now() >= verification.next;
}

async function verify() {
  verification.running = true;
  const started = Date.now();
  try {
    showVerification(await getJson('stats/verify'));
  } catch (error) {
    if (error instanceof AuthError) askForKey(error.message);
    else {
      setPill('verify-state', 'unknown', 'not verified');
      setText('verify-detail', messageOf(error));
      $('verify-failures').hidden = true;
    }
  } finally {
    verification.running = false;
    const took = Date.now() - started;
    verification.next = Date.now() + Math.max(VERIFY_MS, took * VERIFY_IDLE_FACTOR);
  }
}

function showVerification(result) {
  const failing = result.checks.filter((c) => c.difference !== 0);
  if (result.consistent && failing.length === 0) {
    setPill('verify-state', 'ok', 'counters verified');
  } else {
    setPill('verify-state', 'bad', 'counters inconsistent');
  }
  $('verify-failures').replaceChildren(
    ...failing.map((c) => {
      const li = document.createElement('li');
      const sign = c.difference > 0 ? '+' : '';
      const found = `found ${numbers.format(c.actual)} (${sign}${numbers.format(c.difference)})`;
      li.textContent = `${c.name}: expected ${numbers.format(c.expected)}, ${found}`;
      return li;
    }),
  );
  $('verify-failures').hidden = failing.length === 0;
  setText(
    'verify-detail',
    `${result.checks.length} checks · ${numbers.format(result.in_flight)} events in flight · ` +
      `${numbers.format(result.dead_lettered_events)} dead-lettered · ` +
      `checked ${new Date().toLocaleTimeString()}`,
  );
}

function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

function showHealth(health) {
  setPill('health-status', health.status === 'healthy' ? 'ok' : 'bad', health.status);
  setPill(
    'health-database',
    health.database ? 'ok' : 'bad',
    `database ${health.database ? 'up' : 'down'}`,
  );
  setPill('health-queue', health.queue ? 'ok' : 'bad', `queue ${health.queue ? 'up' : 'down'}`);
  setText(
    'health-detail',
    `store ${health.store_backend} · queue ${health.queue_backend} · durability ${health.queue_durability}`,
  );
  setText('uptime', `up ${duration(health.uptime_seconds)}`);
}

function showUnreachable() {
  setPill('health-status', 'bad', 'unreachable');
  setPill('health-database', 'unknown', 'database ?');
  setPill('health-queue', 'unknown', 'queue ?');
}

// ---- polling ----------------------------------------------------------------------------------

async function poll() {
  const health = getJson('health').then(showHealth, showUnreachable);
  if (!auth.waiting) {
    try {
      const [stats, queue] = await Promise.all([getJson('stats'), getJson('queue/stats')]);
      latestStats = stats;
      showCounters(stats, queue);
      addPoint(stats, queue);
      tail.ensureRunning();
      if (verifyDue()) void verify();
      await Promise.all([
        topicsDue(stats) ? getJson('topics').then((t) => showTopics(t, stats.received)) : null,
        (stats.conflicting_duplicates ?? 0) !== conflictsSeen.count
          ? refreshConflicts(stats)
          : null,
        dedupDue(stats) ? refreshDedup(stats) : null,
      ]);
      setText('updated', `updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      if (error instanceof AuthError) askForKey(error.message);
      else setText('updated', `update failed: ${messageOf(error)}`);
    }
  }
  await health;
}

const polling = { timer: undefined, running: false, again: false };

function schedule() {
  clearTimeout(polling.timer);
  polling.timer = setTimeout(pollNow, POLL_MS);
}

function pollNow() {
  if (polling.running) {
    polling.again = true;
    return;
  }
  clearTimeout(polling.timer);
  // A hidden tab asks for nothing; the charts show the gap.
  if (document.hidden) {
    schedule();
    return;
  }
  polling.running = true;
  void poll().finally(() => {
    polling.running = false;
    if (polling.again) {
      polling.again = false;
      pollNow();
    } else schedule();
  });
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) pollNow();
});

// ---- live tail --------------------------------------------------------------------------------

/** Splits a filter typed by a person ("a, b c") into topics; empty means all topics. */
function parseTopics(text) {
  return [...new Set(text.split(/[\s,]+/).filter((t) => t !== ''))];
}

function streamUrl(topics, lastEventId) {
  const query = new URLSearchParams();
  for (const topic of topics) query.append('topic', topic);
  if (lastEventId !== undefined) query.set('last_event_id', String(lastEventId));
  const text = query.toString();
  return text === '' ? 'events/stream' : `events/stream?${text}`;
}

class LiveTail {
  constructor() {
    this.topics = [];
    /** Raw `data:` texts not yet shown, oldest first, at most TAIL_ROWS. */
    this.pending = [];
    this.count = 0;
    this.lastEventId = undefined;
    this.connection = undefined;
    this.retryTimer = undefined;
    this.flushTimer = undefined;
  }

  get running() {
    return this.connection !== undefined || this.retryTimer !== undefined;
  }

  ensureRunning() {
    if (!this.running) this.connect();
  }

  /** A new filter: a new subscription from now on, and an empty list. */
  setTopics(topics) {
    this.stop('idle');
    this.topics = topics;
    this.lastEventId = undefined;
    this.count = 0;
    this.pending = [];
    $('tail-list').replaceChildren();
    $('tail-empty').hidden = false;
    setText('tail-count', '');
    if (!auth.waiting) this.connect();
  }

  stop(state) {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connection?.close();
    this.connection = undefined;
    setPill('tail-state', 'unknown', state);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    setPill('tail-state', 'unknown', 'connecting');
    this.connection = auth.key === '' ? this.openEventSource() : this.openFetchStream();
  }

  retryLater() {
    this.connection?.close();
    this.connection = undefined;
    setPill('tail-state', 'bad', 'reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), STREAM_RETRY_MS);
  }

  openEventSource() {
    const source = new EventSource(streamUrl(this.topics, this.lastEventId));
    source.addEventListener('open', () => setPill('tail-state', 'ok', 'live'));
    source.addEventListener('message', (message) =>
      this.receive(message.lastEventId, message.data),
    );
    source.addEventListener('error', () => {
      // CONNECTING: EventSource retries by itself with Last-Event-ID. CLOSED: it gave up (an
      // answer other than a stream, such as a 401 once keys were configured); start it again,
      // resuming after the last event shown, while the next poll finds out whether a key is due.
      if (source.readyState === EventSource.CLOSED) this.retryLater();
      else setPill('tail-state', 'bad', 'reconnecting');
    });
    return { close: () => source.close() };
  }

  openFetchStream() {
    const controller = new AbortController();
    const headers = authHeaders();
    if (this.lastEventId !== undefined) headers['last-event-id'] = String(this.lastEventId);
    const read = async () => {
      const response = await fetch(streamUrl(this.topics), {
        headers,
        cache: 'no-store',
        signal: controller.signal,
      });
      if (response.status === 401 || response.status === 403) {
        askForKey(await errorMessage(response));
        return false;
      }
      if (!response.ok || response.body === null) return true;
      setPill('tail-state', 'ok', 'live');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return true;
        buffer += value.replaceAll('\r\n', '\n');
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          this.frame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
        }
      }
    };
    read().then(
      (again) => {
        if (again && !controller.signal.aborted) this.retryLater();
      },
      () => {
        if (!controller.signal.aborted) this.retryLater();
      },
    );
    return { close: () => controller.abort() };
  }

  /** One Server-Sent Events frame read by openFetchStream. */
  frame(text) {
    let id = '';
    const data = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('id:')) id = line.slice(3).trim();
      else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
    }
    if (data.length > 0) this.receive(id, data.join('\n'));
  }

  receive(id, data) {
    if (id !== '') this.lastEventId = Number(id);
    this.count++;
    // Only the newest TAIL_ROWS can be shown: the rest is never parsed.
    this.pending.push(data);
    if (this.pending.length > TAIL_ROWS) this.pending.splice(0, this.pending.length - TAIL_ROWS);
    this.flushTimer ??= setTimeout(() => this.flush(), TAIL_FLUSH_MS);
  }

  flush() {
    this.flushTimer = undefined;
    const list = $('tail-list');
    const rows = this.pending.map((data) => this.row(data)).reverse();
    this.pending = [];
    list.prepend(...rows);
    while (list.childElementCount > TAIL_ROWS) list.lastElementChild?.remove();
    $('tail-empty').hidden = list.childElementCount > 0;
    setText('tail-count', `${numbers.format(this.count)} events since subscribing`);
  }

  row(data) {
    const li = document.createElement('li');
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      event = { topic: '?', event_id: '?', source: '?', payload: data };
    }
    li.dataset.topic = event.topic;
    li.dataset.eventId = event.event_id;
    const payload = payloadText(data) ?? JSON.stringify(event.payload ?? {});
    const span = (className, text, title) => {
      const element = document.createElement('span');
      element.className = className;
      element.textContent = text;
      if (title !== undefined) element.title = title;
      return element;
    };
    li.append(
      span('time', shortTime(event.timestamp), `stored ${shortTime(event.processed_at)}`),
      span('topic', event.topic, event.topic),
      span('source', event.source, event.source),
      span('event-id', event.event_id, event.event_id),
      span('payload', payload.slice(0, 300), payload.slice(0, 2000)),
    );
    return li;
  }
}

/**
 * The payload of a stream frame as the server wrote it, not parsed: JSON.parse would round a
 * 64-bit id or a long decimal to a double. The server writes `"payload":` right after the escaped
 * string members (where an unescaped `,"payload":` cannot occur) and `processed_at` last.
 */
function payloadText(data) {
  const start = data.indexOf(',"payload":');
  const end = data.lastIndexOf(',"processed_at":');
  return start < 0 || end < start ? undefined : data.slice(start + ',"payload":'.length, end);
}

const tail = new LiveTail();

$('tail-form').addEventListener('submit', (event) => {
  event.preventDefault();
  tail.setTopics(parseTopics($('tail-topics').value));
});

pollNow();
