/**
 * How far the bounded scan of a search reads again when its first rows held matches but not a
 * page (store/sql/search.ts rowsToFill).
 */
import { describe, expect, it } from 'vitest';
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
