/**
 * Retention: payloads of old events are removed (the row stays as the memory of its key), then,
 * later, the keys themselves are forgotten. Both are counted (expired, keys_expired) in the
 * retention counter shard.
 */
import { RETENTION_SHARD } from '../counter-shards.js';
import type { SqlQueryable } from '../sql-driver.js';
import { run, type Statement } from './statement.js';

/** $1 topic, $2 event time bound (exclusive), $3 most rows. Rows other transactions hold are skipped. */
export const EXPIRE_EVENTS: Statement = {
  name: 'agg_expire_events',
  text: `WITH doomed AS (
         SELECT id FROM events WHERE topic = $1 AND "timestamp" < $2 AND expired_at IS NULL
         ORDER BY "timestamp" LIMIT $3 FOR UPDATE SKIP LOCKED
       ),
       gone AS (
         UPDATE events e SET payload = '{}'::jsonb, expired_at = now()
         FROM doomed d WHERE e.id = d.id RETURNING 1
       ),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, expired)
         SELECT $1, ${RETENTION_SHARD}, count(*) FROM gone HAVING count(*) > 0
         ON CONFLICT (topic, shard) DO UPDATE SET expired = tc.expired + excluded.expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
};

/** $1 event time bound (exclusive), $2 most rows: deletes tombstones, counting keys_expired. */
export const FORGET_KEYS: Statement = {
  name: 'agg_forget_keys',
  text: `WITH doomed AS (
         SELECT id FROM events WHERE expired_at IS NOT NULL AND "timestamp" < $1
         ORDER BY "timestamp" LIMIT $2 FOR UPDATE SKIP LOCKED
       ),
       gone AS (DELETE FROM events e USING doomed d WHERE e.id = d.id RETURNING e.topic),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, keys_expired)
         SELECT topic, ${RETENTION_SHARD}, count(*) FROM gone GROUP BY topic ORDER BY topic
         ON CONFLICT (topic, shard) DO UPDATE SET keys_expired = tc.keys_expired + excluded.keys_expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
};

export async function expireEvents(
  db: SqlQueryable,
  topic: string,
  before: Date,
  limit: number,
): Promise<number> {
  // The row stays, without its payload, as the memory of its key (until forgetKeys).
  const rows = await run<{ n: number }>(db, EXPIRE_EVENTS, [topic, before, limit]);
  return rows[0]?.n ?? 0;
}

export async function forgetKeys(db: SqlQueryable, before: Date, limit: number): Promise<number> {
  const rows = await run<{ n: number }>(db, FORGET_KEYS, [before, limit]);
  return rows[0]?.n ?? 0;
}
