/**
 * The indexes search and field filters use, switched by SEARCH_INDEX (see docs/search.md): a
 * trigram GIN index over event_search_text (migration 0008) for `q`, and a jsonb_path_ops GIN
 * index over the payload for `field.*`. Both cost ingest, so a deployment that never searches may
 * drop them; queries then stay correct and bounded per page, only slower for rare matches.
 */
import type { SqlDriver } from '../sql-driver.js';

/** Arbitrary constant naming this lock, so two processes starting together do not race. */
const SEARCH_INDEX_LOCK_KEY = 7_212_016;

const CREATE = [
  `CREATE INDEX IF NOT EXISTS events_search_idx ON events
     USING gin (event_search_text(payload, source) gin_trgm_ops) WHERE expired_at IS NULL`,
  `CREATE INDEX IF NOT EXISTS events_payload_idx ON events
     USING gin (payload jsonb_path_ops) WHERE expired_at IS NULL`,
];
const DROP = ['DROP INDEX IF EXISTS events_search_idx', 'DROP INDEX IF EXISTS events_payload_idx'];

/**
 * Creates the search indexes (`on`) or drops them (`off`). Creating them over a large store reads
 * every row once, while holding writes back: on PostgreSQL, to switch on a large live store,
 * create them beforehand with CREATE INDEX CONCURRENTLY (the statements are in docs/search.md).
 */
export async function applySearchIndexSetting(driver: SqlDriver, on: boolean): Promise<void> {
  await driver.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SEARCH_INDEX_LOCK_KEY]);
    for (const statement of on ? CREATE : DROP) await tx.query(statement);
  });
}
