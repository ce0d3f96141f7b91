import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/errors.js';
import { numberProblem } from '../../src/http/json-limits.js';

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

  it('gives, for each rule of the Numbers table, examples the service refuses by that rule', () => {
    // The words of the service's reason for each rule, by the start of the rule's row.
    const reasons: [string, RegExp][] = [
      ['a 64-bit float cannot read it', /is too (large|small)/],
      ['more than 16,383 digits after the decimal point', /digits after the decimal point/],
      ['an exponent beyond ±16,383', /has an exponent beyond/],
      ['written with an exponent and printed in more than 400', /would be stored as/],
    ];
    const table = doc.slice(doc.indexOf('## Numbers'));
    for (const [rule, reason] of reasons) {
      const row = table.split('\n').find((line) => line.startsWith(`| ${rule}`));
      expect(row, rule).toBeDefined();
      const examples = [...(row?.split('|')[2] ?? '').matchAll(/`([^`]+)`/g)]
        .map((m) => m[1] ?? '')
        // Whole JSON numbers only (`1.` + 16,384 0s is a description).
        .filter((text) => /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text));
      expect(examples.length, rule).toBeGreaterThan(0);
      for (const example of examples) {
        expect(numberProblem(example).reason, `${rule}: ${example}`).toMatch(reason);
      }
    }
  });
});
