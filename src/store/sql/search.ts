/**
 * Listing with search terms or field filters (GET /events?q=… / field.*=…) so that a page stops
 * early whether the terms are common or rare (docs/search.md has the measurements):
 *
 * - common terms: the newest rows of the topic/source/time range are walked in index order and
 *   filtered; a page fills within a few thousand rows. This is the bounded scan: it reads
 *   SCAN_WINDOW rows first and, when they held some matches but not a page, as many more as
 *   their density says a page needs, up to MAX_SCAN_ROWS.
 * - rare terms: the bounded scan does not fill the page, so the query runs through the trigram
 *   and containment indexes (search-indexes.ts), which find the few matching rows directly.
 */
import type { StoredEvent } from '../../log-event.js';
import type { SqlQueryable } from '../sql-driver.js';
import type { EventQuery } from '../store.js';
import { contentConditions, parameters, rangeConditions, type Param } from './event-filters.js';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './rows/event-row.js';

/** Rows the bounded scan reads first. */
export const SCAN_WINDOW = 2000;

/**
 * The most rows a bounded scan reads (filtering 10,000 rows took 43 ms, docs/search.md): terms
 * rarer than a page in this many rows are left to the indexes.
 */
export const MAX_SCAN_ROWS = 20_000;

/**
 * How many rows a second scan should read to fill a page of `limit`, after `scanned` rows held
 * `matches` (fewer than `limit`): their density with a margin of half again, or undefined when
 * that is more than MAX_SCAN_ROWS (or nothing matched): the indexes answer better.
 */
export function rowsToFill(matches: number, scanned: number, limit: number): number | undefined {
  if (matches <= 0) return undefined;
  const rows = Math.ceil(((scanned * limit) / matches) * 1.5);
  return rows > scanned && rows <= MAX_SCAN_ROWS ? rows : undefined;
}

/** What a bounded scan found. */
export interface ScanResult {
  /** The page: matches among the scanned rows, in order, at most `limit`. */
  readonly events: StoredEvent[];
  /**
   * Whether the range held at least as many rows as were scanned: when the page is short, older
   * matches may exist beyond them. When false, the page holds every match of the range.
   */
  readonly full: boolean;
}

/**
 * Keyset condition: rows strictly beyond the cursor in (timestamp, id) order. The row comparison
 * decides; the plain bound on "timestamp" it implies is there for the planner, which prunes the
 * partitions of events by plain bounds only: without it a page far back in time still opened
 * every newer day's partition (and walked its index).
 */
export function cursorCondition(
  after: NonNullable<EventQuery['after']>,
  desc: boolean,
  param: Param,
): string {
  // Pages neither skip nor repeat rows while new events arrive.
  const ts = param(after.timestamp);
  const id = param(after.id);
  const beyond = desc ? '<' : '>';
  return `"timestamp" ${beyond}= ${ts}::timestamptz AND ("timestamp", id) ${beyond} (${ts}::timestamptz, ${id}::bigint)`;
}

/**
 * The page from the newest (or oldest) `scanRows` rows of the range. Exact as far as it goes:
 * every row beyond the scanned ones comes after every row among them. The scan is an index walk
 * that stops as soon as the page is full; only a page left short costs a second walk, over the
 * index alone, to learn whether the range held more rows.
 */
export async function searchNewest(
  db: SqlQueryable,
  query: EventQuery,
  scanRows: number = SCAN_WINDOW,
): Promise<ScanResult> {
  const { params, param } = parameters();
  const desc = query.order !== 'asc';
  const direction = desc ? 'DESC' : 'ASC';
  const range = rangeConditions(query, param);
  if (query.after !== undefined) range.push(cursorCondition(query.after, desc, param));
  const window = `SELECT * FROM events WHERE ${range.join(' AND ')}
       ORDER BY events."timestamp" ${direction}, events.id ${direction}
       LIMIT ${param(scanRows)}`;
  const rangeParams = [...params];
  const content = contentConditions(query, param);
  const rows = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM (${window}) AS events
     WHERE ${content.join(' AND ')}
     ORDER BY events."timestamp" ${direction}, events.id ${direction}
     LIMIT ${param(query.limit)}`,
    params,
  );
  let full = true;
  if (rows.length < query.limit) {
    const [counted] = await db.query<{ n: number }>(
      `SELECT count(*)::float8 AS n FROM (${window.replace('SELECT *', 'SELECT 1')}) AS w`,
      rangeParams,
    );
    full = (counted?.n ?? 0) >= scanRows;
  }
  return { events: rows.map(toStoredEvent), full };
}
