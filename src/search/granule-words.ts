/**
 * Search granules (docs/search.md): for each run of up to GRANULE_EVENTS events of a message, the
 * apply stores, beside the events it inserted, one row of `event_granules` holding the id range of
 * those rows and the distinct words of their sources and
 * payloads; a trigram index over those words finds the granules a rare term can be in, and only
 * their rows are read. The words are gathered here, in the process that applies, because the
 * same work in SQL cost more than the index saved (docs/search.md).
 *
 * What makes a granule never miss a row: every piece a query asks of the granules (queryPieces)
 * lies inside one word of the granule of each matching row. Words are split at ASCII white space
 * only (GRANULE_SPACE), and a term's pieces are split at the same characters, while the terms
 * themselves never hold white space of any kind but the spaces of a phrase (search-terms.ts).
 * Migration 0011 gathers the same words in SQL for rows stored before (build_event_granules) and
 * for queue messages queued without them (event_granule_words_of).
 */
import type { FieldFilter } from './field-filters.js';

/**
 * Events per granule at most: a message's events are cut into granules of this many, in order.
 * Fewer events per granule narrow a rare identifier better and cost more trigrams per event:
 * with 1,000, a random 8-hex-digit id's trigrams were all in 48% of granules (docs/search.md).
 */
export const GRANULE_EVENTS = 128;

/** Where words are split: the ASCII white space characters, as `[ \t\n\r\f\v]` in SQL. */
export const GRANULE_SPACE = /[ \t\n\r\f\v]+/;

/** Characters a piece needs in a row for the trigram index to narrow anything (pg_trgm). */
const INDEXABLE = /[\p{L}\p{N}]{3}/u;

/**
 * Adds to `words` the words of a JSON value: of every string at any depth, split at
 * GRANULE_SPACE, and every number as JSON writes it (`500`, `1.5`). Keys, booleans and null
 * are not words.
 */
export function collectWords(value: unknown, words: Set<string>): void {
  if (typeof value === 'string') {
    for (const word of value.split(GRANULE_SPACE)) if (word !== '') words.add(word);
  } else if (typeof value === 'number') {
    words.add(JSON.stringify(value));
  } else if (Array.isArray(value)) {
    for (const item of value) collectWords(item, words);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) collectWords(item, words);
  }
}

/**
 * The words of a request body as accepted (`{"events": [{source, payload, …}, …]}`, JSON text or
 * UTF-8 bytes): one text per GRANULE_EVENTS events in order (the events from k·GRANULE_EVENTS),
 * its words one per line, each once. Throws SyntaxError when the body is not JSON (it was
 * validated when accepted, so that is a bug).
 */
export function bodyWords(body: string | Buffer): string[] {
  const parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) as {
    events?: readonly { source?: unknown; payload?: unknown }[];
  };
  const events = parsed.events ?? [];
  const chunks: string[] = [];
  for (let start = 0; start < events.length; start += GRANULE_EVENTS) {
    const words = new Set<string>();
    for (const event of events.slice(start, start + GRANULE_EVENTS)) {
      collectWords(event.source, words);
      collectWords(event.payload, words);
    }
    chunks.push([...words].join('\n'));
  }
  return chunks;
}

/**
 * A request body with its words, as the apply statements read it:
 * `{"words": [<bodyWords>…], "body": <body>}`, spliced around the body's bytes (not serialised
 * again).
 */
export function withWords(body: string | Buffer): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([
    Buffer.from(`{"words":${JSON.stringify(bodyWords(bytes))},"body":`),
    bytes,
    Buffer.from('}'),
  ]);
}

/**
 * What a query asks of the granules' words, each to appear (ILIKE '%piece%'): every term's parts
 * between white space (a phrase gives its words); a string field value's parts the same way; an
 * integer field value (safe in a double) in its digits, which appear in the word of the stored
 * number however it was written (`500`, `500.0`). Only pieces with three letters or digits in a
 * row, the least the trigram index narrows by; none when nothing qualifies (then every granule
 * may hold a match and the rows are read without them).
 */
export function queryPieces(
  terms: readonly string[] | undefined,
  fields: readonly FieldFilter[] | undefined,
): string[] {
  const pieces = new Set<string>();
  const add = (text: string) => {
    for (const piece of text.split(GRANULE_SPACE)) if (INDEXABLE.test(piece)) pieces.add(piece);
  };
  for (const term of terms ?? []) add(term);
  for (const field of fields ?? []) {
    if (typeof field.value === 'string') add(field.value);
    else if (typeof field.value === 'number' && Number.isSafeInteger(field.value)) {
      add(String(field.value));
    }
  }
  return [...pieces];
}
