/**
 * How far the bounded scan of a search reads again when its first rows held matches but not a
 * page (store/sql/search.ts rowsToFill), and what a term asks of the trigram index
 * (store/sql/event-filters.ts indexedParts).
 */
import { describe, expect, it } from 'vitest';
import { indexedParts } from '../../src/store/sql/event-filters.js';
import { MAX_SCAN_ROWS, rowsToFill, SCAN_WINDOW } from '../../src/store/sql/search.js';

describe('rowsToFill', () => {
  it('reads as far as the density of the matches says a page needs, half again', () => {
    // 71 matches in 2,000 rows (3.6%): a page of 100 needs about 2,817 rows.
    expect(rowsToFill(71, SCAN_WINDOW, 100)).toBe(4226);
    expect(rowsToFill(40, SCAN_WINDOW, 100)).toBe(7500);
    expect(rowsToFill(1, 100, 10)).toBe(1500);
  });

  it('leaves terms rarer than a page in MAX_SCAN_ROWS rows to the indexes', () => {
    expect(rowsToFill(0, SCAN_WINDOW, 100)).toBeUndefined();
    expect(rowsToFill(14, SCAN_WINDOW, 100)).toBeUndefined();
    expect(rowsToFill(15, SCAN_WINDOW, 100)).toBe(MAX_SCAN_ROWS);
    expect(rowsToFill(5, MAX_SCAN_ROWS, 100)).toBeUndefined();
  });

  it('never asks for fewer rows than were read', () => {
    expect(rowsToFill(99, SCAN_WINDOW, 100)).toBe(3031);
    expect(rowsToFill(200, SCAN_WINDOW, 100)).toBeUndefined();
  });
});

describe('indexedParts', () => {
  it('asks the index for the words that carry digits, each alone', () => {
    expect(indexedParts('req-7f3a9c')).toEqual(['7f3a9c']);
    expect(indexedParts('ERR_504_GATEWAY')).toEqual(['504']);
    expect(indexedParts('trace 4bf92f3577b34da6 4bf92f3577b34da6')).toEqual(['4bf92f3577b34da6']);
    expect(indexedParts('/api/v1/cart/2048')).toEqual(['2048']);
    expect(indexedParts('Größe-ü42x')).toEqual(['ü42x']);
  });

  it('keeps the whole term (JSON-escaped) when no word of three or more holds a digit', () => {
    expect(indexedParts('checkout')).toEqual(['checkout']);
    expect(indexedParts('10.0.3.7')).toEqual(['10.0.3.7']);
    expect(indexedParts('db-7')).toEqual(['db-7']);
    expect(indexedParts('C:\\logs')).toEqual(['C:\\\\logs']);
    expect(indexedParts('a\tb')).toEqual(['a\\tb']);
  });

  it('never asks for more than the escaped term holds: each part is a substring of it', () => {
    for (const term of ['req-7f3a9c', 'x\u0001y123', 'ab"12c"', '100%_done42']) {
      const escaped = JSON.stringify(term).slice(1, -1);
      for (const part of indexedParts(term)) expect(escaped).toContain(part);
    }
  });
});
