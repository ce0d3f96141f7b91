/** Name and timestamp rules: each refusal names its own reason and the character at fault. */
import { describe, expect, it } from 'vitest';
import { controlProblem, nameProblem } from '../../src/http/schemas/text-rules.js';
import { NOT_ISO_8601, timestampProblem } from '../../src/timestamp.js';

describe('nameProblem', () => {
  it.each([
    'orders',
    'ünïcødé/日志 🚀',
    'a b',
    '👨\u200d👩\u200d👧',
    'می\u200cخواهم',
    'x\u00a0y',
    'emoji\ufe0f',
    'a\u200d',
    '\u200c\u200dx',
  ])('accepts %j', (name) => {
    expect(nameProblem(name)).toBeUndefined();
  });

  it.each([
    ['a\u0000b', 'control characters (U+0000 at index 1)'],
    ['tab\t', 'control characters (U+0009 at index 3)'],
    ['del\u007f', 'control characters (U+007F'],
    ['c1\u0080', 'control characters (U+0080'],
    ['nel\u0085', 'control characters (U+0085'],
    ['\u009b31m', 'control characters (U+009B at index 0)'],
    ['\u009f', 'control characters (U+009F'],
    ['\u0085', 'must not be blank'],
    ['zw\u200bsp', 'invisible formatting characters or line separators (U+200B at index 2)'],
    ['\ufeffbom', '(U+FEFF at index 0)'],
    ['soft\u00adhyphen', '(U+00AD'],
    ['rlo\u202e', '(U+202E'],
    ['isolate\u2066', '(U+2066'],
    ['line\u2028sep', '(U+2028'],
    ['para\u2029sep', '(U+2029'],
    ['tag\u{e0041}', '(U+E0041'],
    [' ', 'must not be blank (only white space)'],
    ['\u00a0\u3000', 'must not be blank'],
    ['\u1680\u2000\u200a\u202f\u205f', 'must not be blank'],
    // Nothing visible: joiners and other default-ignorable code points, alone or with blanks.
    [
      '\u200d',
      'must not be blank (only white space and invisible characters, such as U+200D at index 0)',
    ],
    ['\u200c\u200d\u200c', 'must not be blank (only white space and invisible characters'],
    [
      ' \u200d ',
      'must not be blank (only white space and invisible characters, such as U+200D at index 1)',
    ],
    ['\ufe0f', 'must not be blank'],
    ['\u3164\u3164', 'must not be blank'],
    ['\u034f', 'must not be blank'],
    ['\u200b', 'must not be blank'],
  ])('refuses %j: %s', (name, reason) => {
    expect(nameProblem(name)).toContain(reason);
  });
});

describe('controlProblem (query filters)', () => {
  it.each(['orders', 'a b', 'x\u00a0y', 'zw\u200bsp', '👨\u200d👩\u200d👧', ' ', ''])(
    'accepts %j: only control characters are its concern',
    (text) => {
      expect(controlProblem(text)).toBeUndefined();
    },
  );

  it.each([
    ['err\u0000', 'must not contain control characters (U+0000 at index 3)'],
    ['\u001b[31m', 'must not contain control characters (U+001B at index 0)'],
    ['a\tb', 'must not contain control characters (U+0009 at index 1)'],
    ['x\u0085', 'must not contain control characters (U+0085 at index 1)'],
  ])('refuses %j: %s', (text, reason) => {
    expect(controlProblem(text)).toBe(reason);
    // The same words as the name rule, so a filter and a name are refused alike.
    expect(nameProblem(`n${text}`)).toContain('must not contain control characters');
  });
});

describe('timestampProblem', () => {
  it.each([
    ['2016-12-31T23:59:60Z', 'is a leap second (23:59:60), which is not supported'],
    ['2024-05-01T12:00:00,5Z', 'decimal comma, which is not supported: use a point (12:00:00.5)'],
    ['2024-02-31T00:00:00Z', '2024-02-31 is not a date'],
    ['2023-02-29T00:00:00Z', '2023-02-29 is not a date'],
    ['2024-13-01T00:00:00Z', '2024-13-01 is not a date'],
    ['0000-01-01T00:00:00Z', 'year 0000'],
    ['2024-05-01T24:00:00Z', '24:00:00 is not a time of day'],
    ['2024-05-01T12:60Z', '12:60 is not a time of day'],
    ['2024-05-01T12:00:00+16:00', 'offset +16:00'],
    ['9999-12-31T23:59:59.9999995Z', 'outside years 0001 to 9999'],
    ['yesterday', NOT_ISO_8601],
    ['2024-05-01', NOT_ISO_8601],
    ['2024-05-01T12:00:00.5,5Z', NOT_ISO_8601],
  ])('%s: %s', (text, reason) => {
    expect(timestampProblem(text)).toContain(reason);
  });

  it('has no problem with valid timestamps', () => {
    expect(timestampProblem('2024-05-01T12:00:00.123456+05:30')).toBeUndefined();
    expect(timestampProblem('2016-12-31T23:59:59.999999Z')).toBeUndefined();
  });
});

describe('the schema keywords', () => {
  it('refuse an empty timestamp (no minLength covers it) and leave empty names to minLength', async () => {
    const { Ajv } = await import('ajv');
    const { addTextKeywords } = await import('../../src/http/schemas/text-rules.js');
    const ajv = new Ajv({ allErrors: true, strict: false });
    addTextKeywords(ajv);
    const timestamp = ajv.compile({ type: 'string', 'x-event-timestamp': true });
    expect(timestamp('')).toBe(false);
    expect(timestamp.errors?.[0]?.message).toBe(NOT_ISO_8601);
    expect(timestamp('2024-05-01T12:00:00Z')).toBe(true);
    const name = ajv.compile({ type: 'string', minLength: 1, 'x-name': true });
    expect(name('')).toBe(false);
    expect(name.errors?.map((e) => e.keyword)).toEqual(['minLength']);
    expect(name('a\u0085')).toBe(false);
    expect(name.errors?.[0]?.message).toContain('U+0085');
    const filter = ajv.compile({ type: 'string', 'x-query-text': true });
    expect(filter('GET /api')).toBe(true);
    expect(filter('a\u0000')).toBe(false);
    expect(filter.errors?.[0]).toMatchObject({
      keyword: 'x-query-text',
      message: 'must not contain control characters (U+0000 at index 1)',
    });
  });
});
