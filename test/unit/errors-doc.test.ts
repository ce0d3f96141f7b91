import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';

describe('docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, number>();
  for (const match of doc.matchAll(/^\|\s*`(AGG_ERR_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)) {
    rows.set(match[1] ?? '', Number(match[2]));
  }

  it('lists every code of the registry with its status, and no other', () => {
    const registry = new Map(Object.entries(ERRORS).map(([code, e]) => [code, e.status]));
    expect(rows).toEqual(registry);
  });
});
