/**
 * The counters: `topic_counters` rows per (topic, shard), summed on read. Writers add to their
 * own shard so concurrent transactions do not queue on one row (see counter-shards.ts).
 */
import type { SqlQueryable } from '../sql-driver.js';
import type { Counters, TopicSummary } from '../store.js';
import { toTopicSummary, type TopicSummaryRow } from './rows/topic-summary-row.js';
import { ISO_UTC } from './sql-fragments.js';
import { run, type Statement } from './statement.js';

/** Every counter column, at zero. */
export const ZERO_COUNTS = {
  received: 0,
  unique_processed: 0,
  duplicate_dropped: 0,
  conflicting_duplicates: 0,
  rejected: 0,
  expired: 0,
  keys_expired: 0,
};

type CounterRow = typeof ZERO_COUNTS & { topic: string };

/** SQL summing every counter column over the shards. */
export const COUNTER_SUMS = Object.keys(ZERO_COUNTS)
  .map((c) => `sum(${c})::float8 AS ${c}`)
  .join(', ');

export const COUNTERS_BY_TOPIC: Statement = {
  name: 'agg_counters',
  text: `SELECT topic, ${COUNTER_SUMS} FROM topic_counters GROUP BY topic ORDER BY topic`,
};

export const TOPIC_SUMMARIES: Statement = {
  name: 'agg_topic_summaries',
  text: `SELECT t.*, (SELECT ${ISO_UTC('max(e."timestamp")')} FROM events e
                    WHERE e.topic = t.topic) AS last_event_at
       FROM (SELECT topic, sum(received)::float8 AS received,
                    sum(unique_processed)::float8 AS unique_processed,
                    sum(duplicate_dropped)::float8 AS duplicate_dropped,
                    sum(conflicting_duplicates)::float8 AS conflicting_duplicates,
                    sum(rejected)::float8 AS rejected,
                    sum(expired)::float8 AS expired
             FROM topic_counters GROUP BY topic) t
       ORDER BY t.topic`,
};

export async function topicSummaries(db: SqlQueryable): Promise<TopicSummary[]> {
  const rows = await run<TopicSummaryRow>(db, TOPIC_SUMMARIES);
  return rows.map(toTopicSummary);
}

export async function counters(db: SqlQueryable): Promise<Counters> {
  const rows = await run<CounterRow>(db, COUNTERS_BY_TOPIC);
  const total = { ...ZERO_COUNTS };
  for (const r of rows) {
    for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += r[key];
  }
  return {
    received: total.received,
    uniqueProcessed: total.unique_processed,
    duplicateDropped: total.duplicate_dropped,
    conflictingDuplicates: total.conflicting_duplicates,
    rejected: total.rejected,
    expired: total.expired,
    keysExpired: total.keys_expired,
    topics: rows.map((r) => r.topic),
  };
}
