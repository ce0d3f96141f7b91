/** Reading stored events: listings, id ranges for the live tail, counts, insert announcements. */
import type { StoredEvent } from '../../log-event.js';
import type { SqlDriver, SqlQueryable } from '../sql-driver.js';
import type { EventQuery, InsertWatcher } from '../store.js';
import { INSERTED_CHANNEL } from './apply-statements.js';
import { contentConditions, contentSource, parameters, rangeConditions } from './event-filters.js';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './rows/event-row.js';
import { cursorCondition, rowsToFill, SCAN_WINDOW, searchNewest } from './search.js';
import { run, type Statement } from './statement.js';

export const EVENTS_IN_ID_RANGE: Statement = {
  name: 'agg_events_in_range',
  text: `SELECT ${EVENT_COLUMNS} FROM events WHERE id BETWEEN $1 AND $2 ORDER BY id`,
};

export const EVENTS_AFTER_ID: Statement = {
  name: 'agg_events_after_id',
  text: `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1
             ORDER BY id LIMIT $2`,
};

export const EVENTS_OF_TOPICS_AFTER_ID: Statement = {
  name: 'agg_events_of_topics_after_id',
  text: `SELECT ${EVENT_COLUMNS} FROM events
             WHERE id > $1 AND topic = ANY($2::text[])
             ORDER BY id LIMIT $3`,
};

export const LAST_EVENT_ID: Statement = {
  name: 'agg_last_event_id',
  text: 'SELECT max(id)::float8 AS id FROM events',
};

export const COUNT_EVENTS: Statement = {
  name: 'agg_count_events',
  text: 'SELECT count(*)::float8 AS n FROM events',
};

export const COUNT_TOPIC_EVENTS: Statement = {
  name: 'agg_count_topic_events',
  text: 'SELECT count(*)::float8 AS n FROM events WHERE topic = $1',
};

const DAY_MS = 86_400_000;

/**
 * How far back from the newest possible row a newest-first listing first looks, widening until
 * its page is full: 1, 4, 16, 64 and 256 days, then the whole range.
 */
export const LISTING_WINDOWS_MS: readonly number[] = [1, 4, 16, 64, 256].map((d) => d * DAY_MS);

/**
 * GET /events. The text depends on the filters given, so it is built here (parameterised, never
 * from values) and not prepared. With search terms or field filters, the first pages try the
 * bounded scan of search.ts first.
 *
 * `events` is partitioned by event time, and planning a query costs about as much per partition
 * it may read as reading a page does: a listing without a time bound planned over months of
 * partitions took tens of ms to plan and 2 to run. So a newest-first listing first asks for the
 * rows of the last day before its upper bound (now, `until` or the cursor), a handful of
 * partitions, then 4, 16… days, and the whole range only if the page is still not full (first
 * pages and cursor pages; a page at an offset reads the whole range). Exact:
 * every row of a window comes before every row outside it in (timestamp, id) descending order,
 * so a full page from a window is the page of the whole range.
 *
 * A search (terms or fields) scans each window's newest rows; a scan that filled neither the
 * page nor stopped short of its rows is read again as far as its matches' density says a page
 * needs (rowsToFill). Terms too rare for that go to the search granules (contentSource): first over the last
 * day (a term found hundreds of times a day fills its page there, where over the whole range every
 * one of its matches would be rechecked), then over the whole range.
 */
export async function listEvents(
  db: SqlQueryable,
  query: EventQuery,
  now: number = Date.now(),
): Promise<StoredEvent[]> {
  const windows = windowStarts(query, now);
  const content = (query.terms?.length ?? 0) + (query.fields?.length ?? 0) > 0;
  if (!content || query.offset > 0) {
    for (const since of windows) {
      const rows = await listPage(db, { ...query, since });
      if (rows.length >= query.limit) return rows;
    }
    return listPage(db, query);
  }
  let scanRows = SCAN_WINDOW;
  for (let w = 0; w <= windows.length;) {
    const ranged = w < windows.length ? { ...query, since: windows[w] } : query;
    const scan = await searchNewest(db, ranged, scanRows);
    if (scan.events.length >= query.limit) return scan.events;
    if (!scan.full) {
      // Every match of this range is on the page: a wider range, or the answer.
      if (w === windows.length) return scan.events;
      w++;
      continue;
    }
    const more = rowsToFill(scan.events.length, scanRows, query.limit);
    if (more === undefined) break;
    scanRows = more;
  }
  const [newest] = windows;
  if (newest !== undefined) {
    const rows = await listPage(db, { ...query, since: newest });
    if (rows.length >= query.limit) return rows;
  }
  return listPage(db, query);
}

/** Rows older than this are left to the whole-range query (and year 0 does not exist). */
const OLDEST_WINDOW_START = Date.parse('1000-01-01T00:00:00Z');

/** The `since` of each window of a newest-first listing, narrowest first (ISO 8601). */
function windowStarts(query: EventQuery, now: number): string[] {
  // Offsets (discouraged: the cursor is the way to page) read the whole range as before.
  if (query.order === 'asc' || query.limit <= 0 || query.offset > 0) return [];
  const bounds = [now, query.until, query.after?.timestamp].map((t) =>
    typeof t === 'string' ? Date.parse(t) : t,
  );
  const top = Math.min(...bounds.filter((t): t is number => t !== undefined && !Number.isNaN(t)));
  const since = query.since === undefined ? -Infinity : Date.parse(query.since);
  const starts: string[] = [];
  for (const window of LISTING_WINDOWS_MS) {
    const from = top - window;
    if (!(from > since) || from < OLDEST_WINDOW_START) break;
    starts.push(new Date(from).toISOString());
  }
  return starts;
}

/** One listing query over exactly the range `query` says. */
async function listPage(db: SqlQueryable, query: EventQuery): Promise<StoredEvent[]> {
  const { params, param } = parameters();
  const where = [...rangeConditions(query, param), ...contentConditions(query, param)];
  const desc = query.order !== 'asc';
  if (query.after !== undefined) where.push(cursorCondition(query.after, desc, param));
  const direction = desc ? 'DESC' : 'ASC';
  // Qualified: unqualified, ORDER BY names the formatted output columns of EVENT_COLUMNS (text
  // and float8), which no index provides, so every read sorted the whole topic.
  const rows = await db.query<EventRow>(
    `SELECT ${EVENT_COLUMNS} FROM ${contentSource(query, param, where)}
       ORDER BY events."timestamp" ${direction}, events.id ${direction}
       LIMIT ${param(query.limit)} OFFSET ${param(query.offset)}`,
    params,
  );
  return rows.map(toStoredEvent);
}

export async function eventsInIdRange(
  db: SqlQueryable,
  from: number,
  to: number,
): Promise<StoredEvent[]> {
  const rows = await run<EventRow>(db, EVENTS_IN_ID_RANGE, [from, to]);
  return rows.map(toStoredEvent);
}

export async function eventsAfterId(
  db: SqlQueryable,
  after: number,
  topics: readonly string[] | undefined,
  limit: number,
): Promise<StoredEvent[]> {
  const rows =
    topics === undefined
      ? await run<EventRow>(db, EVENTS_AFTER_ID, [after, limit])
      : await run<EventRow>(db, EVENTS_OF_TOPICS_AFTER_ID, [after, topics, limit]);
  return rows.map(toStoredEvent);
}

export async function lastEventId(db: SqlQueryable): Promise<number> {
  const rows = await run<{ id: number | null }>(db, LAST_EVENT_ID);
  return rows[0]?.id ?? 0;
}

export async function countEvents(db: SqlQueryable, topic?: string): Promise<number> {
  const rows =
    topic === undefined
      ? await run<{ n: number }>(db, COUNT_EVENTS)
      : await run<{ n: number }>(db, COUNT_TOPIC_EVENTS, [topic]);
  return rows[0]?.n ?? 0;
}

/** Reports each committed insert (the apply statements NOTIFY the id range) to `watcher`. */
export function watchInserts(
  driver: SqlDriver,
  watcher: InsertWatcher,
): Promise<() => Promise<void>> {
  return driver.listen(INSERTED_CHANNEL, {
    onNotify: (payload) => {
      const [from, to] = payload.split('-').map(Number);
      if (Number.isSafeInteger(from) && Number.isSafeInteger(to)) {
        watcher.onRange(from as number, to as number);
      }
    },
    onResumed: () => watcher.onResumed(),
  });
}
