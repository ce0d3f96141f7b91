/**
 * The content filters GET /events, /events/histogram and /events/stream share: `q` (search
 * terms) and `field.<path>=<value>` (exact payload values). Their schema, for validation and the
 * OpenAPI description, and their reading into the store's terms.
 */
import { FIELD_PREFIX, parseFieldFilters, type FieldFilter } from '../search/field-filters.js';
import { MAX_QUERY_LENGTH, parseSearchTerms } from '../search/search-terms.js';

/** Querystring properties of the content filters. */
export const contentFilterProperties = {
  q: {
    type: 'string',
    maxLength: MAX_QUERY_LENGTH,
    'x-query-text': true,
    description:
      'Search: every word must appear (ignoring case) in the payload\'s string values (any depth) or the source; `"a quoted phrase"` must appear as written. Words split at spaces only, so `req-7f3a9c`, `10.0.3.7`, `/api/v1/cart` stay whole. No control characters. See docs/search.md.',
  },
} as const;

/** Querystring pattern properties of the content filters. */
export const contentFilterPatternProperties = {
  [`^${FIELD_PREFIX.replace('.', '\\.')}`]: {
    type: 'string',
    'x-query-text': true,
    description:
      'field.<path>=<value>: the payload holds exactly this JSON value at this dotted path (field.http.status=500 is the number, field.code="500" the string, field.level=error a string). No control characters: a value holding one is found as a JSON string with its escape (field.msg="a\\tb").',
  },
} as const;

/** Terms and field filters of a request's query; throws AGG_ERR_INVALID_QUERY naming the parameter. */
export function contentFilters(query: Record<string, unknown>): {
  terms: string[] | undefined;
  fields: FieldFilter[] | undefined;
} {
  const q = query.q;
  const terms = typeof q === 'string' ? parseSearchTerms(q) : undefined;
  const fields = parseFieldFilters(query);
  return { terms, fields: fields.length > 0 ? fields : undefined };
}
