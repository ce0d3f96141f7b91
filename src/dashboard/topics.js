/* global document */
/**
 * The topics table (one row per topic, texts rewritten only where they changed) and the selected
 * topic's deduplication figures per source.
 */
import { askForKey, auth, AuthError, getJson } from './api.js';
import {
  $,
  cell,
  delay,
  messageOf,
  noteRow,
  numbers,
  percents,
  setText,
  shortTime,
} from './dom.js';

/** Topics are read again at least this often even when the counters stand still. */
const TOPICS_REFRESH_MS = 10_000;
const TOPICS_SHOWN = 500;
const SOURCES_SHOWN = 100;

const topicsSeen = { received: -1, at: 0 };

function topicsDue(stats) {
  return stats.received !== topicsSeen.received || Date.now() - topicsSeen.at > TOPICS_REFRESH_MS;
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

function rememberStats(stats) {
  latestStats = stats;
}

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

export { topicsDue, showTopics, dedupDue, refreshDedup, rememberStats };
