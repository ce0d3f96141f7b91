/** /stats/verify: the counting equations, recomputed from the tables in one snapshot. */
import type { SqlQueryable } from '../sql-driver.js';
import type { VerifyCheck } from '../store.js';
import type { ZERO_COUNTS } from './counters.js';
import { COUNTER_SUMS } from './counters.js';
import { run, type Statement } from './statement.js';

/** Everything /stats/verify compares, read in one snapshot. */
export const VERIFY: Statement = {
  name: 'agg_verify',
  text: `
SELECT ${COUNTER_SUMS.replace(/sum\((\w+)\)/g, 'coalesce(sum($1), 0)')},
  (SELECT count(*) FROM events)::float8 AS event_rows,
  (SELECT count(*) FROM event_keys)::float8 AS key_rows,
  (SELECT count(*) FROM conflicts)::float8 AS conflict_rows,
  (SELECT coalesce(sum(events), 0) FROM dedup_stats)::float8 AS source_events,
  (SELECT coalesce(sum(unique_events), 0) FROM dedup_stats)::float8 AS source_unique,
  (SELECT coalesce(sum(duplicates), 0) FROM dedup_stats)::float8 AS source_duplicates
FROM topic_counters`,
};

type VerifyRow = typeof ZERO_COUNTS & {
  event_rows: number;
  key_rows: number;
  conflict_rows: number;
  source_events: number;
  source_unique: number;
  source_duplicates: number;
};

export async function verify(db: SqlQueryable): Promise<VerifyCheck[]> {
  const [row] = await run<VerifyRow>(db, VERIFY);
  if (row === undefined) return [];
  const check = (name: string, expected: number, actual: number): VerifyCheck => ({
    name,
    expected,
    actual,
    difference: actual - expected,
  });
  return [
    check(
      'received = unique_processed + duplicate_dropped + rejected',
      row.unique_processed + row.duplicate_dropped + row.rejected,
      row.received,
    ),
    check(
      'rows in event_keys = unique_processed - keys forgotten by retention',
      row.unique_processed - row.keys_expired,
      row.key_rows,
    ),
    check(
      'rows in events = unique_processed - expired',
      row.unique_processed - row.expired,
      row.event_rows,
    ),
    check(
      'conflicting_duplicates = rows in conflicts',
      row.conflicting_duplicates,
      row.conflict_rows,
    ),
    check(
      'per topic and source: events = unique + duplicates',
      row.source_unique + row.source_duplicates,
      row.source_events,
    ),
    check('per topic and source: events = received', row.received, row.source_events),
  ];
}
