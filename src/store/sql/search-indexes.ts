/**
 * The indexes search and field filters use, switched by SEARCH_INDEX (see docs/search.md): a
 * trigram GIN index over SEARCH_INDEX_TEXT for `q`, and a jsonb_path_ops GIN index over the
 * payload for `field.*`. Both cost ingest, so a deployment that never searches may drop them;
 * queries then stay correct and bounded per page, only slower for rare matches.
 */
import type { SqlDriver } from '../sql-driver.js';

/**
 * What the trigram index holds: the source, then the payload's string values as a JSON array
 * (`["GET /cart", "req-7f3a9c"]`), computed by built-in functions alone. It is a superset filter
 * for the exact search text (event_search_text, migration 0008), with the strings JSON-escaped:
 * a SQL function in an index expression cost about twice the ingest of this (docs/search.md), so
 * the index narrows and event_search_text decides (event-filters.ts).
 */
export const SEARCH_INDEX_TEXT = `(source || E'\n' || jsonb_path_query_array(payload, 'strict $.** ? (@.type() == "string")')::text)`;

/** Arbitrary constant naming this lock, so two processes starting together do not race. */
const SEARCH_INDEX_LOCK_KEY = 7_212_016;

const CREATE = [
  `CREATE INDEX IF NOT EXISTS events_search_idx ON events
     USING gin (${SEARCH_INDEX_TEXT} gin_trgm_ops)`,
  `CREATE INDEX IF NOT EXISTS events_payload_idx ON events
     USING gin (payload jsonb_path_ops)`,
];
const DROP = ['DROP INDEX IF EXISTS events_search_idx', 'DROP INDEX IF EXISTS events_payload_idx'];

/**
 * Creates the search indexes (`on`) or drops them (`off`) on the partitioned events table, which
 * creates or drops them on every partition (and on partitions attached later). Creating them over
 * a large store reads every row once, while holding writes back: on PostgreSQL, to switch on a
 * large live store, build each partition's index CONCURRENTLY first (docs/search.md).
 */
export async function applySearchIndexSetting(driver: SqlDriver, on: boolean): Promise<void> {
  // Present already (every start but the first): nothing to build, and no lock to wait for.
  const [present] = await driver.query<{ present: boolean }>(
    `SELECT to_regclass('events_search_idx') IS NOT NULL
        AND to_regclass('events_payload_idx') IS NOT NULL AS present`,
  );
  if (on && present?.present === true) return;
  await driver.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SEARCH_INDEX_LOCK_KEY]);
    for (const statement of on ? CREATE : DROP) await tx.query(statement);
  });
}
