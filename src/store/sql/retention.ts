/**
 * Retention row by row, beside the partition drops of partitions.ts: rows of topics with their
 * own retention (RETENTION_TOPIC_DAYS), and rows the default partition holds (events outside the
 * created partitions). Deleted rows are counted as expired; keys are forgotten later, once their
 * payload row is gone, counted as keys_expired. Both in the retention counter shard.
 */
import { RETENTION_SHARD } from '../counter-shards.js';
import type { SqlQueryable } from '../sql-driver.js';
import { DEFAULT_PARTITION } from './partitions.js';
import { run, type Statement } from './statement.js';

/** Which topics' keys forgetKeys looks at: all but `except`, and only `only` when given. */
export interface KeyTopics {
  readonly except?: readonly string[];
  readonly only?: readonly string[];
}

/** $1 topic, $2 event time bound (exclusive), $3 most rows. Rows other transactions hold are skipped. */
export const EXPIRE_EVENTS: Statement = {
  name: 'agg_expire_events',
  text: `WITH doomed AS (
         SELECT id, "timestamp" FROM events WHERE topic = $1 AND "timestamp" < $2
         ORDER BY "timestamp" LIMIT $3 FOR UPDATE SKIP LOCKED
       ),
       gone AS (
         DELETE FROM events e USING doomed d
         WHERE e.topic = $1 AND e."timestamp" < $2 AND e.id = d.id AND e."timestamp" = d."timestamp"
         RETURNING 1
       ),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, expired)
         SELECT $1, ${RETENTION_SHARD}, count(*) FROM gone HAVING count(*) > 0
         ON CONFLICT (topic, shard) DO UPDATE SET expired = tc.expired + excluded.expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
};

/**
 * $1 event time bound (exclusive), $2 most rows, $3 topics left out (they have their own
 * retention): deletes rows of the default partition, counting them per topic.
 */
export const EXPIRE_UNPARTITIONED: Statement = {
  name: 'agg_expire_unpartitioned',
  text: `WITH doomed AS (
         SELECT id FROM ${DEFAULT_PARTITION}
         WHERE "timestamp" < $1 AND topic <> ALL($3::text[])
         ORDER BY "timestamp" LIMIT $2 FOR UPDATE SKIP LOCKED
       ),
       gone AS (
         DELETE FROM ${DEFAULT_PARTITION} e USING doomed d WHERE e.id = d.id RETURNING e.topic
       ),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, expired)
         SELECT topic, ${RETENTION_SHARD}, count(*) FROM gone GROUP BY topic ORDER BY topic
         ON CONFLICT (topic, shard) DO UPDATE SET expired = tc.expired + excluded.expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
};

/**
 * $1 event time bound (exclusive), $2 most keys, $3 topics left out (kept forever), $4 the only
 * topics looked at (null: all): deletes keys whose payload row is gone (probed in the partition
 * of the key's event time), counting keys_expired.
 */
export const FORGET_KEYS: Statement = {
  name: 'agg_forget_keys',
  text: `WITH doomed AS (
         SELECT k.topic, k.event_id FROM event_keys k
         WHERE k."timestamp" < $1 AND k.topic <> ALL($3::text[])
           AND ($4::text[] IS NULL OR k.topic = ANY($4::text[]))
           AND NOT EXISTS (
             SELECT 1 FROM events e
             WHERE e.topic = k.topic AND e."timestamp" = k."timestamp" AND e.event_id = k.event_id
           )
         ORDER BY k."timestamp" LIMIT $2 FOR UPDATE OF k SKIP LOCKED
       ),
       gone AS (
         DELETE FROM event_keys k USING doomed d
         WHERE k.topic = d.topic AND k.event_id = d.event_id RETURNING k.topic
       ),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, keys_expired)
         SELECT topic, ${RETENTION_SHARD}, count(*) FROM gone GROUP BY topic ORDER BY topic
         ON CONFLICT (topic, shard) DO UPDATE SET keys_expired = tc.keys_expired + excluded.keys_expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
};

/**
 * $1 event time bound (exclusive), $2 most granules: deletes search granules (migration 0011)
 * wholly before the bound none of whose id range is stored any more. A granule whose rows were
 * kept (a topic retained longer, moved to the default partition with its ids) stays.
 */
export const FORGET_GRANULES: Statement = {
  name: 'agg_forget_granules',
  text: `WITH doomed AS (
         SELECT g.ctid AS row FROM event_granules g
         WHERE g.max_ts < $1
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id BETWEEN g.first_id AND g.last_id)
         LIMIT $2
       ),
       gone AS (DELETE FROM event_granules g USING doomed d WHERE g.ctid = d.row RETURNING 1)
       SELECT count(*)::float8 AS n FROM gone`,
};

export async function forgetGranules(
  db: SqlQueryable,
  before: Date,
  limit: number,
): Promise<number> {
  const rows = await run<{ n: number }>(db, FORGET_GRANULES, [before, limit]);
  return rows[0]?.n ?? 0;
}

export async function expireEvents(
  db: SqlQueryable,
  topic: string,
  before: Date,
  limit: number,
): Promise<number> {
  const rows = await run<{ n: number }>(db, EXPIRE_EVENTS, [topic, before, limit]);
  return rows[0]?.n ?? 0;
}

export async function expireUnpartitioned(
  db: SqlQueryable,
  before: Date,
  limit: number,
  exceptTopics: readonly string[],
): Promise<number> {
  const rows = await run<{ n: number }>(db, EXPIRE_UNPARTITIONED, [before, limit, exceptTopics]);
  return rows[0]?.n ?? 0;
}

export async function forgetKeys(
  db: SqlQueryable,
  before: Date,
  limit: number,
  topics: KeyTopics,
): Promise<number> {
  const rows = await run<{ n: number }>(db, FORGET_KEYS, [
    before,
    limit,
    topics.except ?? [],
    topics.only ?? null,
  ]);
  return rows[0]?.n ?? 0;
}
