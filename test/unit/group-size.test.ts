import { describe, expect, it } from 'vitest';
import { groupSize, MAX_GROUP_BYTES } from '../../src/queue/queue.js';

describe('groupSize: how many queued messages one apply statement takes', () => {
  const bytes = (s: string) => Buffer.byteLength(s);

  it('stops at the count limit', () => {
    expect(groupSize(['a', 'b', 'c', 'd'], 3, bytes)).toBe(3);
    expect(groupSize(['a', 'b'], 50, bytes)).toBe(2);
  });

  it('stops before the byte limit is passed, and always takes at least one', () => {
    const half = 'x'.repeat(MAX_GROUP_BYTES / 2);
    expect(groupSize([half, half, half], 10, bytes)).toBe(2);
    expect(groupSize([half + half + 'x', 'y'], 10, bytes)).toBe(1);
  });

  it('counts UTF-8 bytes: non-ASCII bodies fill a statement sooner than their length says', () => {
    // 'é' is one UTF-16 unit and two bytes: a third of the limit in characters is two thirds in bytes.
    const third = 'é'.repeat(Math.floor(MAX_GROUP_BYTES / 3));
    expect(third.length * 3).toBeLessThanOrEqual(MAX_GROUP_BYTES);
    expect(groupSize([third, third, third], 10, bytes)).toBe(1);
  });
});
