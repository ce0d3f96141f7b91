/* global AbortController, EventSource, ResizeObserver, TextDecoderStream, URLSearchParams */
/* global clearTimeout, document, fetch, getComputedStyle, sessionStorage, setTimeout */
/**
 * The dashboard's script: a client of the public JSON API, nothing more.
 *
 * - Every POLL_MS it reads /health (open), /stats and /queue/stats, updates the counters and adds
 *   a point to the two charts; /topics is read again when the counters moved.
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

function showTopics(topics, received) {
  topicsSeen.received = received;
  topicsSeen.at = Date.now();
  const rows = [];
  for (const t of topics.slice(0, TOPICS_SHOWN)) {
    const tr = document.createElement('tr');
    tr.dataset.topic = t.topic;
    tr.append(
      cell(t.topic, 'topic'),
      cell(numbers.format(t.events), 'num stored'),
      cell(numbers.format(t.received), 'num received'),
      cell(numbers.format(t.unique_processed), 'num unique'),
      cell(numbers.format(t.duplicate_dropped), 'num duplicates'),
      cell(numbers.format(t.expired), 'num expired'),
      cell(shortTime(t.last_event_at), 'time'),
    );
    rows.push(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = cell('No topic yet.');
    td.colSpan = 7;
    tr.append(td);
    rows.push(tr);
  } else if (topics.length > TOPICS_SHOWN) {
    const tr = document.createElement('tr');
    tr.className = 'empty';
    const td = cell(`… and ${numbers.format(topics.length - TOPICS_SHOWN)} more topics`);
    td.colSpan = 7;
    tr.append(td);
    rows.push(tr);
  }
  $('topics-body').replaceChildren(...rows);
  $('topic-options').replaceChildren(
    ...topics.slice(0, TOPICS_SHOWN).map((t) => {
      const option = document.createElement('option');
      option.value = t.topic;
      return option;
    }),
  );
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
      showCounters(stats, queue);
      addPoint(stats, queue);
      tail.ensureRunning();
      if (topicsDue(stats)) showTopics(await getJson('topics'), stats.received);
      setText('updated', `updated ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      if (error instanceof AuthError) askForKey(error.message);
      else setText('updated', `update failed: ${error instanceof Error ? error.message : error}`);
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
    const payload = JSON.stringify(event.payload ?? {});
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

const tail = new LiveTail();

$('tail-form').addEventListener('submit', (event) => {
  event.preventDefault();
  tail.setTopics(parseTopics($('tail-topics').value));
});

pollNow();
