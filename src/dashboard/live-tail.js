/* global AbortController, EventSource, TextDecoderStream, URLSearchParams, clearTimeout, document, fetch, setTimeout */
/**
 * A live tail of /events/stream. Without a key it uses EventSource, which resumes by itself with
 * Last-Event-ID; with a key (EventSource cannot send headers) it reads the same stream with fetch
 * and resumes with the Last-Event-ID header itself. The dashboard's tail and the explorer's live
 * mode are two of these, each with its own elements, filters and row.
 */
import { askForKey, auth, authHeaders, errorMessage } from './api.js';
import { $, numbers, setPill, setText, shortTime } from './dom.js';
import { parseExact } from './exact-json.js';

/** Events kept in the live tail; older rows leave the DOM. */
const TAIL_ROWS = 100;
const TAIL_FLUSH_MS = 100;
const STREAM_RETRY_MS = 1000;

// ---- live tail --------------------------------------------------------------------------------

/** Splits a filter typed by a person ("a, b c") into topics; empty means all topics. */
function parseTopics(text) {
  return [...new Set(text.split(/[\s,]+/).filter((t) => t !== ''))];
}

/** The stream's URL: its filters (name → value or values), resuming after `lastEventId`. */
function streamUrl(filters, lastEventId) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    for (const v of Array.isArray(value) ? value : [value]) query.append(name, v);
  }
  if (lastEventId !== undefined) query.set('last_event_id', String(lastEventId));
  const text = query.toString();
  return text === '' ? 'events/stream' : `events/stream?${text}`;
}

/** The elements of the dashboard's own tail. */
const TAIL_ELEMENTS = {
  list: 'tail-list',
  empty: 'tail-empty',
  count: 'tail-count',
  state: 'tail-state',
};

class LiveTail {
  /**
   * `elements`: ids of the list, its empty note, the count and the state pill; `row(event, data)`
   * makes a list item of a received event (parsed) and its raw JSON.
   */
  constructor({ elements = TAIL_ELEMENTS, row = tailRow } = {}) {
    this.elements = elements;
    this.makeRow = row;
    /** The stream's query parameters (topic, source, q, field.*). */
    this.filters = {};
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
    this.setFilters({ topic: topics });
  }

  /** A new filter (query parameters of the stream): a new subscription, an empty list. */
  setFilters(filters) {
    this.stop('idle');
    this.filters = filters;
    this.lastEventId = undefined;
    this.count = 0;
    this.pending = [];
    $(this.elements.list).replaceChildren();
    $(this.elements.empty).hidden = false;
    setText(this.elements.count, '');
    if (!auth.waiting) this.connect();
  }

  stop(state) {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.connection?.close();
    this.connection = undefined;
    setPill(this.elements.state, 'unknown', state);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    setPill(this.elements.state, 'unknown', 'connecting');
    this.connection = auth.key === '' ? this.openEventSource() : this.openFetchStream();
  }

  retryLater() {
    this.connection?.close();
    this.connection = undefined;
    setPill(this.elements.state, 'bad', 'reconnecting');
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), STREAM_RETRY_MS);
  }

  openEventSource() {
    const source = new EventSource(streamUrl(this.filters, this.lastEventId));
    source.addEventListener('open', () => setPill(this.elements.state, 'ok', 'live'));
    source.addEventListener('message', (message) =>
      this.receive(message.lastEventId, message.data),
    );
    source.addEventListener('error', () => {
      // CONNECTING: EventSource retries by itself with Last-Event-ID. CLOSED: it gave up (an
      // answer other than a stream, such as a 401 once keys were configured); start it again,
      // resuming after the last event shown, while the next poll finds out whether a key is due.
      if (source.readyState === EventSource.CLOSED) this.retryLater();
      else setPill(this.elements.state, 'bad', 'reconnecting');
    });
    return { close: () => source.close() };
  }

  openFetchStream() {
    const controller = new AbortController();
    const headers = authHeaders();
    if (this.lastEventId !== undefined) headers['last-event-id'] = String(this.lastEventId);
    const read = async () => {
      const response = await fetch(streamUrl(this.filters), {
        headers,
        cache: 'no-store',
        signal: controller.signal,
      });
      if (response.status === 401 || response.status === 403) {
        askForKey(await errorMessage(response));
        return false;
      }
      if (!response.ok || response.body === null) return true;
      setPill(this.elements.state, 'ok', 'live');
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
    const list = $(this.elements.list);
    const rows = this.pending.map((data) => this.row(data)).reverse();
    this.pending = [];
    list.prepend(...rows);
    while (list.childElementCount > TAIL_ROWS) list.lastElementChild?.remove();
    $(this.elements.empty).hidden = list.childElementCount > 0;
    setText(this.elements.count, `${numbers.format(this.count)} events since subscribing`);
  }

  row(data) {
    let event;
    try {
      event = parseExact(data);
    } catch {
      event = { topic: '?', event_id: '?', source: '?', payload: data };
    }
    return this.makeRow(event, data);
  }
}

/** A row of the dashboard's tail: time, topic, source, id and the start of the payload. */
function tailRow(event) {
  const li = document.createElement('li');
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

export { LiveTail, parseTopics };
