/**
 * Listing with search terms or field filters (GET /events?q=… / field.*=…) so that a page stops
 * early whether the terms are common or rare (docs/search.md has the measurements):
 *
 * - common terms: the newest rows of the topic/source/time range are walked in index order and
 *   filtered; a page fills within a few thousand rows. This is the bounded scan: at most
 *   SCAN_WINDOW rows are read.
 * - rare terms: the bounded scan does not fill the page, so the query runs as a whole, where the
 *   trigram and containment indexes (search-indexes.ts) find the few matching rows directly.
 */
import type { StoredEvent } from '../../log-event.js';
import type { SqlQueryable } from '../sql-driver.js';
import type { EventQuery } from '../store.js';
import { contentConditions, parameters, rangeConditions, type Param } from './event-filters.js';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './rows/event-row.js';

/** Rows the bounded scan reads before handing over to the indexes. */
export const SCAN_WINDOW = 2000;

/** Keyset condition: rows strictly beyond the cursor in (timestamp, id) order. */
export function cursorCondition(
  after: NonNullable<EventQuery['after']>,
  desc: boolean,
  param: Param,
): string {
  // Pages neither skip nor repeat rows while new events arrive.
  const ts = param(after.timestamp);
  const id = param(after.id);
  return `("timestamp", id) ${desc ? '<' : '>'} (${ts}::timestamptz, ${id}::bigint)`;
}

/**
 * The page from the newest (or oldest) SCAN_WINDOW rows of the range, or undefined when that
 * window was full yet did not fill the page: older matches may exist, the caller asks the
 * indexes. Exact when it answers: every row beyond the window comes after every row in it.
 * The scan is an index walk that stops as soon as the page is full; only a page left short
 * costs a second walk, over the index alone, to learn whether the window was full.
 */
export async function searchNewest(
  db: SqlQueryable,
  query: EventQuery,
): Promise<StoredEvent[] | undefined> {
  const { params, param } = parameters();
  const desc = query.order !== 'asc';
  const direction = desc ? 'DESC' : 'ASC';
  const range = rangeConditions(query, param);
  if (query.after !== undefined) range.push(cursorCondition(query.after, desc, param));
  const window = `SELECT * FROM events WHERE ${range.join(' AND ')}
       ORDER BY events."timestamp" ${direction}, events.id ${direction}
       LIMIT ${param(SCAN_WINDOW)}`;
  const rangeParams = [...params];
  const content = contentConditions(query, param);
  const rows = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM (${window}) AS events
     WHERE ${content.join(' AND ')}
     ORDER BY events."timestamp" ${direction}, events.id ${direction}
     LIMIT ${param(query.limit)}`,
    params,
  );
  if (rows.length < query.limit) {
    const [counted] = await db.query<{ n: number }>(
      `SELECT count(*)::float8 AS n FROM (${window.replace('SELECT *', 'SELECT 1')}) AS w`,
      rangeParams,
    );
    if ((counted?.n ?? 0) >= SCAN_WINDOW) return undefined;
  }
  return rows.map(toStoredEvent);
}
