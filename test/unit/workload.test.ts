import { describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';

describe('makeWorkload', () => {
  it.each([
    [1000, 0.35, 0],
    [1000, 0.35, 0.1],
    [1000, 0.4, 1],
  ])(
    '%i events, dupRate %f, conflictRate %f: the counts it reports are the events it made',
    (total, dupRate, conflictRate) => {
      const w = makeWorkload({ total, dupRate, conflictRate, topics: ['a', 'b'], seed: 3 });
      const keys = new Set(w.events.map((e) => `${e.topic}\u0000${e.event_id}`));
      expect(w.events).toHaveLength(total);
      expect(keys.size).toBe(w.unique);
      expect(w.events.length - keys.size).toBe(w.duplicates);
      const firsts = new Map<string, string>();
      let differing = 0;
      for (const e of w.events) {
        const key = `${e.topic}\u0000${e.event_id}`;
        const payload = JSON.stringify(e.payload);
        const first = firsts.get(key);
        if (first === undefined) firsts.set(key, payload);
        else if (first !== payload) differing++;
      }
      expect(differing).toBe(w.conflicts);
    },
  );

  it('refuses more conflicting copies than there are keys to give them', () => {
    expect(() =>
      makeWorkload({ total: 1000, dupRate: 0.6, conflictRate: 1, topics: ['a'], seed: 3 }),
    ).toThrow(/only 400 unique keys/);
  });
});
