/**
 * The door's limits on JSON numbers and nesting: each refused literal says why and names the
 * path of the value, and the literals PostgreSQL stores sanely pass. The figures of "printed"
 * are what PostgreSQL 15 prints for the literal in JSONB (checked with `'…'::jsonb::text`).
 */
import { describe, expect, it } from 'vitest';
import {
  jsonLimitProblem,
  MAX_NUMBER_SCALE,
  MAX_PRINTED_NUMBER,
  numberProblem,
  pathAt,
} from '../../src/http/json-limits.js';

const check = (json: string) => jsonLimitProblem(Buffer.from(json));

describe('numberProblem', () => {
  it.each([
    // literal, characters PostgreSQL prints
    ['0', 1],
    ['-0', 1],
    ['100e-1', 4],
    ['123.45e1', 6],
    ['0.000e5', 1],
    ['0e200', 1],
    ['1e-7', 9],
    ['5e-324', 326],
    ['1.7976931348623157e308', 309],
    ['-1.5E+3', 5],
    ['0e-390', 392],
  ])('%s is stored, printed in %i characters', (literal, printed) => {
    expect(numberProblem(literal)).toEqual({ printedLength: printed });
  });

  it.each([
    ['0e-16384', 'exponent beyond ±16383'],
    ['-0e-16384', 'exponent beyond ±16383'],
    ['0.0e-16383', `16384 digits after the decimal point; at most ${MAX_NUMBER_SCALE}`],
    [`1.${'0'.repeat(16_384)}`, '16384 digits after the decimal point'],
    ['0e-16383', 'would be stored as 16385 characters'],
    ['0E-401', 'would be stored as 403 characters'],
    ['0e1073741824', 'exponent beyond'],
    ['1E+131072', 'too large'],
    ['1e400', 'too large'],
    [`${'9'.repeat(400)}`, 'too large'],
    ['1.5e-16382', 'too small'],
    ['-1e-400', 'too small'],
  ])('%s is refused: %s', (literal, reason) => {
    expect(numberProblem(literal).reason).toContain(reason);
  });

  it('allows a literal as long as what is printed', () => {
    // Written out in full, a long fraction is stored as written: no growth.
    const literal = `1.${'0'.repeat(1000)}e0`;
    expect(numberProblem(literal)).toEqual({ printedLength: literal.length - 2 });
    expect(MAX_PRINTED_NUMBER).toBeLessThan(literal.length);
  });
});

describe('jsonLimitProblem', () => {
  it('names the path of the refused number, in whatever shape was sent', () => {
    expect(check('{"events":[{"payload":{"v":0e-16384}}]}')).toEqual({
      field: 'events[0].payload.v',
      reason: expect.stringContaining('0e-16384') as string,
    });
    expect(check('{"events":[{"a":1},{"payload":{"list":[1,2,[3,-0e-16384]]}}]}')?.field).toBe(
      'events[1].payload.list[2][1]',
    );
    expect(check('[{"topic":"t,{["},{"p":{"x\\"y":1e999}}]')?.field).toBe('[1].p.x"y');
    expect(check('{"payload":{"n":0e-16383}}')?.field).toBe('payload.n');
    expect(check('1e999')?.field).toBe('body');
  });

  it('passes ordinary bodies and numbers at a float edge', () => {
    expect(check('{"events":[{"p":{"a":1.7976931348623157e308,"b":5e-324,"c":-0}}]}')).toBe(
      undefined,
    );
  });

  it('bounds how much the numbers of a body may grow when printed', () => {
    // 1e-300 prints in 302 characters: fine alone, not 200 times in a small body.
    const many = `{"p":[${Array.from({ length: 200 }, () => '1e-300').join(',')}]}`;
    const problem = check(many);
    expect(problem?.reason).toContain('stored');
    expect(problem?.field).toMatch(/^p\[\d+\]$/);
    expect(check(`{"p":[${Array.from({ length: 50 }, () => '1e-300').join(',')}]}`)).toBe(
      undefined,
    );
  });

  it('names where nesting goes too deep', () => {
    const deep = `{"events":[{"payload":{"d":${'['.repeat(100)}${']'.repeat(100)}}}]}`;
    expect(check(deep)).toEqual({
      field: `events[0].payload.d${'[0]'.repeat(60)}`,
      reason: 'arrays and objects are nested more than 64 levels deep',
    });
  });
});

describe('pathAt', () => {
  it('finds keys and indexes around strings holding brackets and commas', () => {
    const json = '{"a":"x,}]","b":[{"c":"[,"},{"d":7}]}';
    expect(pathAt(Buffer.from(json), json.indexOf('7'))).toBe('b[1].d');
  });
});
