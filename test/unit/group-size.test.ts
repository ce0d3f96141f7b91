import { describe, expect, it } from 'vitest';
import { bodyBytes, groupSize, MAX_GROUP_BYTES } from '../../src/queue/queue.js';

describe('groupSize: how many queued messages one apply statement takes', () => {
  it('stops at the count limit', () => {
    expect(groupSize(['a', 'b', 'c', 'd'], 3, bodyBytes)).toBe(3);
    expect(groupSize(['a', 'b'], 50, bodyBytes)).toBe(2);
  });

  it('stops before the byte limit is passed, and always takes at least one', () => {
    const half = 'x'.repeat(MAX_GROUP_BYTES / 2);
    expect(groupSize([half, half, half], 10, bodyBytes)).toBe(2);
    expect(groupSize([half + half + 'x', 'y'], 10, bodyBytes)).toBe(1);
  });

  it('the queues count UTF-8 bytes, text or Buffer: non-ASCII bodies fill a statement sooner', () => {
    expect(bodyBytes('é')).toBe(2);
    expect(bodyBytes(Buffer.from('é'))).toBe(2);
    // A third of the limit in characters is two thirds of it in bytes: one body per statement.
    const third = 'é'.repeat(Math.floor(MAX_GROUP_BYTES / 3));
    expect(groupSize([third, third, third], 10, bodyBytes)).toBe(1);
  });
});
