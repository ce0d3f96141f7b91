/** The arithmetic of partition ranges (src/store/sql/partitions.ts): intervals, names, gaps. */
import { describe, expect, it } from 'vitest';
import {
  addIntervals,
  freeRanges,
  intervalStart,
  partitionName,
} from '../../src/store/sql/partitions.js';

const at = (iso: string) => new Date(iso);

describe('partition ranges', () => {
  it('start each interval in UTC: hour, day, Monday, first of the month', () => {
    const t = at('2026-11-29T13:45:12.345Z'); // a Sunday
    expect(intervalStart('hour', t).toISOString()).toBe('2026-11-29T13:00:00.000Z');
    expect(intervalStart('day', t).toISOString()).toBe('2026-11-29T00:00:00.000Z');
    expect(intervalStart('week', t).toISOString()).toBe('2026-11-23T00:00:00.000Z');
    expect(intervalStart('week', at('2026-11-30T00:00:00Z')).toISOString()).toBe(
      '2026-11-30T00:00:00.000Z',
    );
    expect(intervalStart('month', t).toISOString()).toBe('2026-11-01T00:00:00.000Z');
  });

  it('step by intervals across month and year ends', () => {
    expect(addIntervals('day', at('2026-12-31T00:00:00Z'), 1).toISOString()).toBe(
      '2027-01-01T00:00:00.000Z',
    );
    expect(addIntervals('month', at('2026-12-01T00:00:00Z'), 2).toISOString()).toBe(
      '2027-02-01T00:00:00.000Z',
    );
    expect(addIntervals('hour', at('2026-03-01T00:00:00Z'), -1).toISOString()).toBe(
      '2026-02-28T23:00:00.000Z',
    );
    expect(addIntervals('week', at('2026-11-23T00:00:00Z'), -1).toISOString()).toBe(
      '2026-11-16T00:00:00.000Z',
    );
  });

  it('name a partition after its start', () => {
    expect(partitionName(at('2026-01-02T05:00:00Z'))).toBe('events_p2026010205');
  });

  it('find the parts of a range no existing partition covers', () => {
    const p = (from: string, to: string) => ({ name: 'x', from: at(from), to: at(to) });
    const iso = (r: { from: Date; to: Date }[]) =>
      r.map((x) => [x.from.toISOString().slice(0, 10), x.to.toISOString().slice(0, 10)]);
    const week = [at('2026-11-23T00:00:00Z'), at('2026-11-30T00:00:00Z')] as const;
    expect(iso(freeRanges(...week, []))).toEqual([['2026-11-23', '2026-11-30']]);
    // Day partitions made before a switch to weeks: the week is created around them.
    expect(
      iso(freeRanges(...week, [p('2026-11-24', '2026-11-25'), p('2026-11-26', '2026-11-27')])),
    ).toEqual([
      ['2026-11-23', '2026-11-24'],
      ['2026-11-25', '2026-11-26'],
      ['2026-11-27', '2026-11-30'],
    ]);
    expect(iso(freeRanges(...week, [p('2026-11-01', '2026-12-01')]))).toEqual([]);
  });
});
