/* global document */
/**
 * The checks: recent conflicting duplicates (read again when their counter moves) and the
 * verification of the counting equations (/stats/verify, which counts whole tables).
 */
import { askForKey, AuthError, getJson } from './api.js';
import { $, cell, messageOf, noteRow, numbers, setPill, setText, shortTime } from './dom.js';

/**
 * Verification counts whole tables: it is asked for every VERIFY_MS at most, and then only after
 * VERIFY_IDLE_FACTOR times as long as it took, so a slow check of a big store loads it ≤ 5%.
 */
const VERIFY_MS = 5000;
const VERIFY_IDLE_FACTOR = 20;
const CONFLICTS_SHOWN = 10;
/** The API keeps the first 200 characters of each side's payload. */
const PAYLOAD_START_CHARS = 200;

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

export { conflictsSeen, refreshConflicts, verification, verifyDue, verify };
