/**
 * No Prometheus `_total` the service exports may ever decrease: Prometheus reads a decrease as a
 * restart, and `rate()` then counts the whole total again. The deployment counters are read from
 * the store at each scrape, so this drives them through what really happens to the `/stats`
 * figures between two scrapes, a late conflict under reject-conflicts among them (it moves one
 * event from duplicate_dropped to rejected), and checks every `_total` after each step.
 */
import { describe, expect, it } from 'vitest';
import { DeploymentMetrics } from '../../src/metrics.js';
import type { Queue } from '../../src/queue/queue.js';
import type { Counters, Store } from '../../src/store/store.js';

const zero: Counters = {
  received: 0,
  uniqueProcessed: 0,
  duplicateDropped: 0,
  conflictingDuplicates: 0,
  rejected: 0,
  expired: 0,
  keysExpired: 0,
  topics: [],
};

/** What /stats says after each step, and the dead letters waiting then. */
const steps: { name: string; counters: Counters; deadLetters: number }[] = [
  { name: 'empty', counters: zero, deadLetters: 0 },
  {
    name: '10 events, 3 duplicates (one not yet compared with its original)',
    counters: { ...zero, received: 10, uniqueProcessed: 7, duplicateDropped: 3, topics: ['t'] },
    deadLetters: 1,
  },
  {
    name: 'the late comparison finds a conflict and rejects it',
    counters: {
      ...zero,
      received: 10,
      uniqueProcessed: 7,
      duplicateDropped: 2,
      conflictingDuplicates: 1,
      rejected: 1,
      topics: ['t'],
    },
    deadLetters: 1,
  },
  {
    name: 'an operator deletes the dead letter; retention expires 2 events',
    counters: {
      ...zero,
      received: 12,
      uniqueProcessed: 8,
      duplicateDropped: 3,
      conflictingDuplicates: 1,
      rejected: 1,
      expired: 2,
      topics: ['t'],
    },
    deadLetters: 0,
  },
];

/** Series name → value, from the exposition text. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('deployment metrics', () => {
  it('never lower a _total, whatever moves between the /stats figures', async () => {
    let step = steps[0] as (typeof steps)[number];
    const store = {
      counters: () => Promise.resolve(step.counters),
      deadLetterCount: () => Promise.resolve(step.deadLetters),
    } as unknown as Store;
    const queue = {
      depth: () => Promise.resolve({ events: 0, messages: 0 }),
    } as unknown as Queue;
    const metrics = new DeploymentMetrics(store, queue);

    let previous = new Map<string, number>();
    const seen: number[] = [];
    for (step of steps) {
      const now = samples(await (await metrics.refresh()).metrics());
      const totals = [...now].filter(([name]) => name.endsWith('_total'));
      expect(totals.length, step.name).toBeGreaterThanOrEqual(6);
      for (const [name, value] of totals) {
        expect(value, `${name} after "${step.name}"`).toBeGreaterThanOrEqual(
          previous.get(name) ?? 0,
        );
      }
      // /stats keeps its meaning; the exported duplicates are those dropped or refused.
      expect(now.get('aggregator_events_duplicate_total'), step.name).toBe(
        step.counters.duplicateDropped + step.counters.rejected,
      );
      seen.push(now.get('aggregator_dead_letters') ?? Number.NaN);
      previous = now;
    }
    // Dead letters go down when deleted: a gauge, with no _total of that name.
    expect(seen).toEqual([0, 1, 1, 0]);
    expect([...previous.keys()].some((name) => name.startsWith('aggregator_dead_letters_'))).toBe(
      false,
    );
  });
});
