/**
 * Conflicting duplicates: copies of a stored key whose timestamp, source or payload differ. The
 * apply statements record those they can see; this module settles the rest (duplicates whose
 * stored copy a concurrent transaction had not yet committed) and lists them.
 */
import { LATE_CONFLICT_SHARD } from '../counter-shards.js';
import type { SqlQueryable } from '../sql-driver.js';
import type { StoredConflict } from '../store.js';
import { CONFLICT_COLUMNS, toStoredConflict, type ConflictRow } from './rows/conflict-row.js';
import { differs } from './sql-fragments.js';
import { run, type Statement } from './statement.js';

/**
 * $1: how many pending checks to settle. Each duplicate whose stored copy was invisible when it
 * was dropped is compared with that copy now; a difference is recorded and counted as a conflict
 * (and, if the policy then was to reject, moved from duplicate_dropped to rejected).
 */
export const RESOLVE_PENDING_CONFLICTS: Statement = {
  name: 'agg_resolve_pending_conflicts',
  text: `
WITH checked AS (
  DELETE FROM pending_conflict_checks
  WHERE id IN (SELECT id FROM pending_conflict_checks ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING *
),
-- The key says whether the copies differ; the payload row (in the partition of the key's event
-- time) says how, while retention has not removed it.
found AS (
  SELECT c.*, k.content_hash AS stored_hash, k."timestamp" AS stored_ts, s.source AS stored_source,
         left(s.payload::text, 200) AS stored_payload
  FROM checked c JOIN event_keys k USING (topic, event_id)
  LEFT JOIN LATERAL event_stored_copy(k.topic, k.event_id, k."timestamp") s ON true
  WHERE k.content_hash <> 0 AND k.content_hash <> c.hash
),
recorded AS (
  INSERT INTO conflicts (topic, event_id, stored_hash, duplicate_hash, stored_timestamp,
                         duplicate_timestamp, stored_source, duplicate_source, stored_payload,
                         duplicate_payload, rejected, differs, detected_at)
  SELECT topic, event_id, stored_hash, hash, stored_ts, ts, stored_source, source, stored_payload,
         payload, rejected, ${differs('stored_ts', 'ts', 'stored_source', 'source', 'NULL::boolean')},
         seen_at
  FROM found ORDER BY id
),
by_topic AS (
  SELECT topic, count(*) AS n, count(*) FILTER (WHERE rejected) AS r FROM found GROUP BY topic
),
counted AS (
  INSERT INTO topic_counters AS tc (topic, shard, conflicting_duplicates, duplicate_dropped, rejected)
  SELECT topic, ${LATE_CONFLICT_SHARD}, n, -r, r FROM by_topic ORDER BY topic
  ON CONFLICT (topic, shard) DO UPDATE SET
    conflicting_duplicates = tc.conflicting_duplicates + excluded.conflicting_duplicates,
    duplicate_dropped = tc.duplicate_dropped + excluded.duplicate_dropped,
    rejected = tc.rejected + excluded.rejected
),
by_source AS (SELECT topic, source, count(*) AS n FROM found GROUP BY topic, source),
sourced AS (
  INSERT INTO dedup_stats AS ds (topic, source, shard, conflicts)
  SELECT topic, source, ${LATE_CONFLICT_SHARD}, n FROM by_source ORDER BY topic, source
  ON CONFLICT (topic, source, shard) DO UPDATE SET conflicts = ds.conflicts + excluded.conflicts
),
-- The receipt's letter for each such event becomes C (or R) instead of D.
receipted AS (
  UPDATE receipts r
  SET outcomes = (
    SELECT string_agg(coalesce(l.letter, x.letter), '' ORDER BY x.position)
    FROM unnest(string_to_array(r.outcomes, NULL)) WITH ORDINALITY AS x(letter, position)
    LEFT JOIN (
      SELECT f.position, CASE WHEN f.rejected THEN 'R' ELSE 'C' END AS letter
      FROM found f WHERE f.message_id = r.message_id
    ) l ON l.position = x.position
  )
  WHERE r.message_id IN (SELECT message_id FROM found)
)
SELECT (SELECT count(*) FROM found)::float8 AS n`,
};

export async function resolvePendingConflicts(db: SqlQueryable, limit: number): Promise<number> {
  const rows = await run<{ n: number }>(db, RESOLVE_PENDING_CONFLICTS, [limit]);
  return rows[0]?.n ?? 0;
}

/** Newest first; the text depends on the filters given, so it is built here and not prepared. */
export async function listConflicts(
  db: SqlQueryable,
  query: { topic?: string | undefined; limit: number; beforeId?: number | undefined },
): Promise<StoredConflict[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.topic !== undefined) {
    params.push(query.topic);
    where.push(`topic = $${params.length}`);
  }
  if (query.beforeId !== undefined) {
    params.push(query.beforeId);
    where.push(`id < $${params.length}`);
  }
  params.push(query.limit);
  const rows = await db.query<ConflictRow>(
    `SELECT ${CONFLICT_COLUMNS}
       FROM conflicts ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map(toStoredConflict);
}
