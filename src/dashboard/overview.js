/**
 * The overview: the counters, the rate and queue charts (one point per poll), and health.
 */
import { makeChart } from './charts.js';
import { $, duration, numbers, percents, rates, setPill, setText } from './dom.js';

/** Points kept on the charts: five minutes at one per poll. */
const HISTORY_POINTS = 300;

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

export { addPoint, showCounters, showHealth, showUnreachable };
