import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { timestampFromNanos } from '../../src/ingest/nanos.js';
import { isValidTimestamp, normalizeTimestamp, timestampProblem } from '../../src/timestamp.js';

describe('normalizeTimestamp', () => {
  it.each([
    ['2024-05-01T12:00:00Z', '2024-05-01T12:00:00Z'],
    ['2024-05-01t12:00:00z', '2024-05-01T12:00:00Z'],
    ['2024-05-01 12:00', '2024-05-01T12:00:00Z'],
    ['2024-05-01T12:00:00', '2024-05-01T12:00:00Z'],
    ['2024-05-01T12:00:00.123456+05:30', '2024-05-01T12:00:00.123456+05:30'],
    ['2024-05-01T12:00:00-0800', '2024-05-01T12:00:00-08:00'],
    ['2024-05-01T12:00:00+02', '2024-05-01T12:00:00+02:00'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00Z'],
    ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00Z'],
    ['9999-12-31T23:59:59Z', '9999-12-31T23:59:59Z'],
    ['9999-12-31T23:59:59.999999Z', '9999-12-31T23:59:59.999999Z'],
    ['9999-12-31T23:59:59.9999994Z', '9999-12-31T23:59:59.9999994Z'],
  ])('accepts %s as %s', (input, expected) => {
    expect(normalizeTimestamp(input)).toBe(expected);
  });

  it.each([
    '',
    'yesterday',
    '2024-05-01',
    '12:00:00',
    '2023-02-29T00:00:00Z',
    '2024-04-31T00:00:00Z',
    '2024-13-01T00:00:00Z',
    '2024-00-10T00:00:00Z',
    '0000-01-01T00:00:00Z',
    '2024-05-01T24:00:00Z',
    '2024-05-01T12:60:00Z',
    '2024-05-01T12:00:60Z',
    '2024-05-01T12:00:00+16:00',
    '2024-05-01T12:00:00.1234567890Z',
    '20240501T120000Z',
    '+002024-05-01T12:00:00Z',
    ' 2024-05-01T12:00:00Z',
    '9999-12-31T23:59:59-15:00',
    '0001-01-01T00:00:00+01:00',
    // PostgreSQL rounds to microseconds: these would be stored as year 10000.
    '9999-12-31T23:59:59.9999995Z',
    '9999-12-31T23:59:59.999999999Z',
  ])('refuses %j', (input) => {
    expect(normalizeTimestamp(input)).toBeUndefined();
  });
});

describe('the calendar arithmetic', () => {
  // Date implements the same proleptic Gregorian calendar: both must agree on every date and
  // offset, including the edges of years 1 and 9999 and the leap days.
  const pad = (n: number, width: number) => String(n).padStart(width, '0');

  it('agrees with Date on which timestamps are real instants within years 1-9999', () => {
    fc.assert(
      fc.property(
        fc.record({
          year: fc.oneof(
            fc.integer({ min: 1, max: 9999 }),
            fc.constantFrom(1, 2, 1900, 2000, 9999),
          ),
          month: fc.integer({ min: 1, max: 12 }),
          day: fc.integer({ min: 1, max: 31 }),
          hour: fc.integer({ min: 0, max: 23 }),
          minute: fc.integer({ min: 0, max: 59 }),
          second: fc.integer({ min: 0, max: 59 }),
          offset: fc.option(fc.integer({ min: -(15 * 60 + 59), max: 15 * 60 + 59 })),
        }),
        ({ year, month, day, hour, minute, second, offset }) => {
          const zone =
            offset === null
              ? 'Z'
              : `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60), 2)}:${pad(Math.abs(offset) % 60, 2)}`;
          const text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}${zone}`;
          const probe = new Date(Date.UTC(2000, month - 1, day));
          probe.setUTCFullYear(year);
          const realDay = probe.getUTCDate() === day;
          // 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z.
          const instant = Date.parse(text);
          const inRange = instant >= -62_135_596_800_000 && instant < 253_402_300_800_000;
          expect(isValidTimestamp(text)).toBe(realDay && inRange);
          expect(normalizeTimestamp(text) !== undefined).toBe(isValidTimestamp(text));
        },
      ),
      { numRuns: 20_000 },
    );
  });
});

describe('nanosecond Unix times (OTLP, Loki)', () => {
  it('become ISO 8601 timestamps with nine fraction digits, years 1 to 9999 only', () => {
    expect(timestampFromNanos(1_714_564_800_123_456_789n)).toBe('2024-05-01T12:00:00.123456789Z');
    expect(timestampFromNanos(0n)).toBe('1970-01-01T00:00:00.000000000Z');
    expect(timestampFromNanos(-1n)).toBe('1969-12-31T23:59:59.999999999Z');
    const year1 = -62_135_596_800_000n * 1_000_000n;
    expect(timestampFromNanos(year1)).toBe('0001-01-01T00:00:00.000000000Z');
    expect(timestampFromNanos(year1 - 1n)).toBeUndefined();
    const year10000 = 253_402_300_800_000n * 1_000_000n;
    // Rounded to microseconds, the last 500 ns of year 9999 would be year 10000.
    expect(timestampFromNanos(year10000 - 501n)).toBe('9999-12-31T23:59:59.999999499Z');
    expect(timestampFromNanos(year10000 - 500n)).toBeUndefined();
    expect(timestampFromNanos(year10000)).toBeUndefined();
    expect(timestampFromNanos(2n ** 64n - 1n)).toBe('2554-07-21T23:34:33.709551615Z');
    // Every result is a timestamp publish accepts.
    for (const n of [0n, -1n, year1, year10000 - 501n, 1_714_564_800_123_456_789n]) {
      expect(timestampProblem(timestampFromNanos(n) ?? '')).toBeUndefined();
    }
  });
});
