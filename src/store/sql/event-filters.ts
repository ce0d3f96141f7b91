/**
 * The WHERE conditions of an EventFilter, shared by the listing (events.ts, search.ts) and the
 * histogram (histogram.ts) so both cover exactly the same rows. Values are always parameters.
 */
import { containmentOf } from '../../search/field-filters.js';
import { queryPieces } from '../../search/granule-words.js';
import type { EventFilter } from '../store.js';
import { SEARCH_INDEX_TEXT } from './search-indexes.js';

/** Adds a parameter and returns its placeholder (`$n`). */
export type Param = (value: unknown) => string;

/** A fresh parameter list and the function that appends to it. */
export function parameters(): { params: unknown[]; param: Param } {
  const params: unknown[] = [];
  return {
    params,
    param: (value) => {
      params.push(value);
      return `$${params.length}`;
    },
  };
}

/**
 * Conditions an index on (topic | source, timestamp, id) can walk: topic, source and the time
 * range (which also prunes the partitions of events). Never empty (`true` without filters).
 */
export function rangeConditions(filter: EventFilter, param: Param): string[] {
  const where = ['true'];
  if (filter.topic !== undefined) where.push(`topic = ${param(filter.topic)}`);
  if (filter.source !== undefined) where.push(`source = ${param(filter.source)}`);
  if (filter.since !== undefined) where.push(`"timestamp" >= ${param(filter.since)}::timestamptz`);
  if (filter.until !== undefined) where.push(`"timestamp" < ${param(filter.until)}::timestamptz`);
  return where;
}

/** Escapes LIKE's wildcards so a term matches as written. */
const likeLiteral = (term: string) => term.replace(/[\\%_]/g, (c) => `\\${c}`);

/** A term as it appears in a JSON string: `\` and control characters escaped as jsonb prints them. */
const jsonEscaped = (term: string) => JSON.stringify(term).slice(1, -1);

/**
 * What a term asks of SEARCH_INDEX_TEXT (ILIKE '%…%' each), the cheap test before the exact one:
 * the words of three or more letters and digits that hold a digit (`7f3a9c` of `req-7f3a9c`),
 * each alone, or, when there is none, the whole term. Strings the JSON-escaped term contains, so
 * each is implied by it (the exact condition decides).
 */
export function indexedParts(term: string): string[] {
  const escaped = jsonEscaped(term);
  const words = (escaped.match(/[\p{L}\p{N}]{3,}/gu) ?? []).filter((w) => /\p{N}/u.test(w));
  return words.length > 0 ? [...new Set(words)] : [escaped];
}

/**
 * Conditions on content: each search term must appear in event_search_text (migration 0008),
 * ignoring case; before that, the term's indexedParts in SEARCH_INDEX_TEXT, which is cheap to
 * compute, so the exact text is computed only for rows that may match. The payload must contain
 * each field filter's value at its path (`@>`). Empty without either.
 */
export function contentConditions(filter: EventFilter, param: Param): string[] {
  const where: string[] = [];
  for (const term of filter.terms ?? []) {
    for (const part of indexedParts(term)) {
      where.push(`${SEARCH_INDEX_TEXT} ILIKE ${param(`%${likeLiteral(part)}%`)}`);
    }
    where.push(`event_search_text(payload, source) ILIKE ${param(`%${likeLiteral(term)}%`)}`);
  }
  for (const field of filter.fields ?? []) {
    where.push(`payload @> ${param(JSON.stringify(containmentOf(field)))}::jsonb`);
  }
  return where;
}

/**
 * The FROM item a listing or histogram reads, named `events`, holding the rows that meet `where`
 * (conditions on events' columns, as rangeConditions and contentConditions give them). With
 * pieces to ask the search granules for (queryPieces), only the rows in the id ranges of the
 * granules whose words hold every piece and whose event time overlaps the filter's (migration
 * 0011) are read: the ranges are merged first (range_agg), so no row is read twice, and each is
 * read through the partitions' id index (OFFSET 0 keeps the planner from reading the rows first
 * and the granules after). A superset of the matching rows by construction (granule-words.ts):
 * `where` decides. Without pieces, `events` filtered by `where`.
 */
export function contentSource(filter: EventFilter, param: Param, where: readonly string[]): string {
  const pieces = queryPieces(filter.terms, filter.fields);
  const rows = `SELECT * FROM events WHERE ${where.join(' AND ')}`;
  if (pieces.length === 0) return `(${rows}) AS events`;
  const granules = pieces.map((p) => `g.words ILIKE ${param(`%${likeLiteral(p)}%`)}`);
  if (filter.since !== undefined) granules.push(`g.max_ts >= ${param(filter.since)}::timestamptz`);
  if (filter.until !== undefined) granules.push(`g.min_ts < ${param(filter.until)}::timestamptz`);
  return `(SELECT e.* FROM (
      SELECT unnest(range_agg(int8range(g.first_id, g.last_id, '[]'))) AS ids
      FROM event_granules g WHERE ${granules.join(' AND ')}) AS granules
    CROSS JOIN LATERAL (
      ${rows} AND events.id >= lower(granules.ids) AND events.id < upper(granules.ids) OFFSET 0
    ) AS e) AS events`;
}
