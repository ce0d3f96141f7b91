/**
 * The index search and field filters use, switched by SEARCH_INDEX (see docs/search.md): a
 * trigram GIN index over the words of the search granules (migration 0011). It costs ingest, so a
 * deployment that never searches may drop it; queries then stay correct and bounded per page,
 * only slower for rare matches.
 */
import type { SqlDriver } from '../sql-driver.js';

/**
 * A cheap superset of the exact search text: the source, then the payload's string values as a
 * JSON array (`["GET /cart", "req-7f3a9c"]`), computed by built-in functions alone, the strings
 * JSON-escaped. A row must hold a term's parts here before event_search_text (migration 0008,
 * about ten times the cost) is computed for it (event-filters.ts).
 */
export const SEARCH_INDEX_TEXT = `(source || E'\n' || jsonb_path_query_array(payload, 'strict $.** ? (@.type() == "string")')::text)`;

/** Arbitrary constant naming this lock, so two processes starting together do not race. */
const SEARCH_INDEX_LOCK_KEY = 7_212_016;

/**
 * The index over the search granules (migration 0011, granule-words.ts): the trigrams of their
 * words, and their max_ts and min_ts (btree_gin, migration 0012), so a search bounded in time
 * asks it for the granules of its range holding the words in one scan.
 */
export const GRANULE_INDEX = 'event_granules_words_idx';

/**
 * Creates the index over the search granules' words and times (`on`) or drops it (`off`). The
 * granules themselves are written either way (they cost little, and switching on needs no
 * rebuild of them); without the index, a query reads every granule of its time range instead.
 * Creating it reads the granules once (about 20 bytes of words per event), holding their writes
 * back: for 10,000,000 events' 80,000 granules, 59 s here (docs/search.md).
 */
export async function applySearchIndexSetting(driver: SqlDriver, on: boolean): Promise<void> {
  // Present already (every start but the first): nothing to build, and no lock to wait for.
  const [present] = await driver.query<{ present: boolean }>(
    `SELECT to_regclass('${GRANULE_INDEX}') IS NOT NULL AS present`,
  );
  if (on === (present?.present === true)) return;
  await driver.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [SEARCH_INDEX_LOCK_KEY]);
    await tx.query(
      on
        ? `CREATE INDEX IF NOT EXISTS ${GRANULE_INDEX} ON event_granules
             USING gin (words gin_trgm_ops, max_ts, min_ts)`
        : `DROP INDEX IF EXISTS ${GRANULE_INDEX}`,
    );
  });
}
