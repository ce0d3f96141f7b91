/**
 * The `q` parameter of GET /events, /events/histogram and /events/stream: what a person types to
 * find log lines. Words are separated by white space only, so tokens pasted from logs stay whole
 * (`req-7f3a9c`, `10.0.3.7`, `/api/v1/cart`, `ERR_TIMEOUT`); `"a quoted phrase"` is one term,
 * spaces included. An event matches when every term appears in its search text (see
 * event-match.ts), ignoring case.
 */
import { AggregatorError } from '../errors.js';

/** Longest `q` accepted, in characters. */
export const MAX_QUERY_LENGTH = 512;

/**
 * The terms of `q`, in order, duplicates removed. A quote left open runs to the end of `q`.
 * Throws AGG_ERR_INVALID_QUERY (details name `q`) when `q` is longer than MAX_QUERY_LENGTH or
 * holds no term.
 */
export function parseSearchTerms(q: string): string[] {
  if (q.length > MAX_QUERY_LENGTH) {
    throw invalid(`q is ${q.length} characters; at most ${MAX_QUERY_LENGTH}`);
  }
  const terms: string[] = [];
  for (const match of q.matchAll(/"([^"]*)"?|[^\s"]+/g)) {
    const term = match[1] === undefined ? match[0] : match[1].trim();
    if (term !== '' && !terms.includes(term)) terms.push(term);
  }
  if (terms.length === 0) throw invalid('q holds no word to search for');
  return terms;
}

function invalid(reason: string): AggregatorError {
  return new AggregatorError('AGG_ERR_INVALID_QUERY', reason, [{ field: 'q', reason }]);
}
