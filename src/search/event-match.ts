/**
 * The search and field filters as JavaScript, for events that never pass through SQL (the live
 * stream). It states the same rules as the SQL (store/sql/event-filters.ts and migration
 * 0008_search.sql): the search text is the source and every string value of the payload at any
 * depth, one per line; a term matches when it appears in it ignoring case; a field filter matches
 * when the payload holds exactly that JSON value at that path.
 */
import type { FieldFilter } from './field-filters.js';

/** The text a search looks in: the source, then each string in the payload, one per line. */
export function searchText(source: string, payload: unknown): string {
  const strings: string[] = [source];
  const walk = (value: unknown): void => {
    if (typeof value === 'string') strings.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(payload);
  return strings.join('\n');
}

/** Whether every term appears in the event's search text, ignoring case. */
export function matchesTerms(source: string, payload: unknown, terms: readonly string[]): boolean {
  if (terms.length === 0) return true;
  const text = searchText(source, payload).toLowerCase();
  return terms.every((term) => text.includes(term.toLowerCase()));
}

/** Whether the payload holds each filter's exact value at its path. */
export function matchesFields(payload: unknown, filters: readonly FieldFilter[]): boolean {
  return filters.every((filter) => {
    let value: unknown = payload;
    for (const key of filter.path) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
      value = (value as Record<string, unknown>)[key];
    }
    return value === filter.value;
  });
}
