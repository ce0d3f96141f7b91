/* global clearTimeout, document, setTimeout */
/**
 * The dashboard's script: a client of the public JSON API, nothing more. This module polls and
 * wires the parts together; each part has a module of its own:
 *
 * - overview.js: counters, rate and queue charts (charts.js), health;
 * - topics.js: the topics table and the selected topic's per-source deduplication;
 * - checks.js: recent conflicts and the verification of the counters;
 * - live-tail.js: the live tail of /events/stream;
 * - api.js: requests, the API key and its form; dom.js: text and formatting helpers.
 *
 * Every POLL_MS it reads /health (open), /stats and /queue/stats, updates the counters and adds a
 * point to the two charts; /topics is read again when the counters moved, /conflicts when the
 * conflicting_duplicates counter moved, the selected topic's /topics/{topic}/dedup when the
 * counters moved, /stats/verify every few seconds at most.
 *
 * Every text from the API reaches the page through textContent, never as HTML.
 */
import { askForKey, auth, AuthError, getJson, keyEvents } from './api.js';
import { conflictsSeen, refreshConflicts, verification, verify, verifyDue } from './checks.js';
import { $, messageOf, setText } from './dom.js';
import { LiveTail, parseTopics } from './live-tail.js';
import { addPoint, showCounters, showHealth, showUnreachable } from './overview.js';
import { dedupDue, refreshDedup, rememberStats, showTopics, topicsDue } from './topics.js';

const POLL_MS = 1000;

// ---- polling ----------------------------------------------------------------------------------

async function poll() {
  const health = getJson('health').then(showHealth, showUnreachable);
  if (!auth.waiting) {
    try {
      const [stats, queue] = await Promise.all([getJson('stats'), getJson('queue/stats')]);
      rememberStats(stats);
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

const tail = new LiveTail();

$('tail-form').addEventListener('submit', (event) => {
  event.preventDefault();
  tail.setTopics(parseTopics($('tail-topics').value));
});

keyEvents.needed = () => tail.stop('needs key');
keyEvents.entered = () => {
  verification.next = 0;
  pollNow();
};

pollNow();
