/**
 * Deduplication figures per source of a topic (GET /topics/{topic}/dedup): the sums the apply
 * statements keep in `dedup_stats`, and the median delay from the `dedup_delays` histogram.
 */
import type { SqlQueryable } from '../sql-driver.js';
import type { DedupStats } from '../store.js';
import { capped, medianOfBuckets } from './delay-median.js';
import { run, type Statement } from './statement.js';

export const DEDUP_SOURCES: Statement = {
  name: 'agg_dedup_sources',
  text: `SELECT source, sum(events)::float8 AS events, sum(unique_events)::float8 AS unique_events,
              sum(duplicates)::float8 AS duplicates, sum(conflicts)::float8 AS conflicts,
              max(max_delay_ms)::float8 AS max_delay_ms
       FROM dedup_stats WHERE topic = $1 GROUP BY source ORDER BY source`,
};

export const DEDUP_DELAY_BUCKETS: Statement = {
  name: 'agg_dedup_delay_buckets',
  text: `SELECT source, bucket, sum(n)::float8 AS n FROM dedup_delays WHERE topic = $1
       GROUP BY source, bucket ORDER BY source, bucket`,
};

interface SourceRow {
  source: string;
  events: number;
  unique_events: number;
  duplicates: number;
  conflicts: number;
  max_delay_ms: number;
}

export async function dedupStats(db: SqlQueryable, topic: string): Promise<DedupStats[]> {
  const sources = await run<SourceRow>(db, DEDUP_SOURCES, [topic]);
  const buckets = await run<{ source: string; bucket: number; n: number }>(
    db,
    DEDUP_DELAY_BUCKETS,
    [topic],
  );
  return sources.map((s) => {
    const histogram = buckets.filter((b) => b.source === s.source);
    return {
      source: s.source,
      events: s.events,
      unique: s.unique_events,
      duplicates: s.duplicates,
      conflicts: s.conflicts,
      maxDelayMs: s.max_delay_ms,
      // A bucket's middle can lie above the largest delay seen.
      medianDelayMs: capped(medianOfBuckets(histogram), s.max_delay_ms),
    };
  });
}
