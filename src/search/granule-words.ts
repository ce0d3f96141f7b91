/**
 * Search granules (docs/search.md): for each run of up to GRANULE_EVENTS events of a message, the
 * apply stores, beside the events it inserted, one row of `event_granules` holding the id range of
 * those rows and the distinct words of their sources and
 * payloads; a trigram index over those words finds the granules a rare term can be in, and only
 * their rows are read. The words are gathered here, in the process that applies, because the
 * same work in SQL cost more than the index saved (docs/search.md).
 *
 * What makes a granule never miss a row: every piece a query asks of the granules (queryPieces)
 * lies inside one word of the granule of each matching row. Words and pieces are both the runs of
 * letters, marks and digits (WORD_BREAK splits at everything else), so a run of a term that
 * appears in an event's text lies inside a run of that text; a piece has three letters or digits
 * in a row, so only words of three characters or more can hold one, and shorter ones are left
 * out. The trigram index sees no more than that anyway: pg_trgm makes trigrams of the runs of
 * letters and digits alone. Migration 0011 gathers words in SQL for rows stored before
 * (build_event_granules) and for queue messages queued without them (event_granule_words_of),
 * split at white space only: longer words, which hold the same pieces.
 */
import type { FieldFilter } from './field-filters.js';

/**
 * Events per granule at most: a message's events are cut into granules of this many, in order.
 * Fewer events per granule narrow a rare identifier better and cost more trigrams per event:
 * with 1,000, a random 8-hex-digit id's trigrams were all in 48% of granules (docs/search.md).
 */
export const GRANULE_EVENTS = 128;

/**
 * Where words and pieces are split: at every character that is not a letter, a mark or a digit
 * (`req-7f3a9c` gives `req` and `7f3a9c`, `/api/v1/cart` gives `api`, `v1` and `cart`).
 */
const WORD_BREAK = /[^\p{L}\p{M}\p{N}]+/u;

/** Characters a piece needs in a row for the trigram index to narrow anything (pg_trgm). */
const INDEXABLE = /[\p{L}\p{N}]{3}/u;

/** What a word needs to hold a piece: three characters (code points, as INDEXABLE counts). */
const SHORTEST_WORD = /^[\s\S]{3}/u;

/** Adds the words of a text to `words`: its runs between WORD_BREAK of three characters or more. */
function addWords(text: string, words: Set<string>): void {
  for (const word of text.split(WORD_BREAK)) if (SHORTEST_WORD.test(word)) words.add(word);
}

/**
 * Adds to `words` the words of a JSON value: of every string at any depth and of every number as
 * JSON writes it (`500`; `1.5` holds none), each a run of letters, marks and digits between
 * WORD_BREAK of three characters or more. Keys, booleans and null are not words.
 */
export function collectWords(value: unknown, words: Set<string>): void {
  if (typeof value === 'string') {
    addWords(value, words);
  } else if (typeof value === 'number') {
    addWords(JSON.stringify(value), words);
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
 * What a query asks of the granules' words, each to appear (ILIKE '%piece%'): every term's runs
 * between WORD_BREAK (`req-7f3a9c` asks for `req` and `7f3a9c`; a phrase gives its words); a
 * string field value's runs the same way; an integer field value (safe in a double) in its
 * digits, which appear in the word of the stored number however it was written (`500`,
 * `500.0`). Only pieces with three letters or digits in a row, the least the trigram index
 * narrows by; none when nothing qualifies (then every granule may hold a match and the rows are
 * read without them).
 */
export function queryPieces(
  terms: readonly string[] | undefined,
  fields: readonly FieldFilter[] | undefined,
): string[] {
  const pieces = new Set<string>();
  const add = (text: string) => {
    for (const piece of text.split(WORD_BREAK)) if (INDEXABLE.test(piece)) pieces.add(piece);
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
