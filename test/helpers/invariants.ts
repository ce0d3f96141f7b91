/**
 * The invariants every fault test ends with, checked on what the database really holds:
 * nothing acknowledged lost, nothing doubled, counters that add up (per topic too), and a
 * `received` explained by what the publisher sent.
 */
import { expect } from 'vitest';
import type { LogEvent } from '../../src/log-event.js';
import type { Stats } from './http.js';
import { keysOf, missingKeys, type StoredState } from './stored-state.js';

export interface ExpectedOutcome {
  /** Every event the publisher tried to send (acknowledged or not). */
  readonly published: readonly LogEvent[];
  /** The events of the requests answered 200: each must be stored. */
  readonly acknowledged: readonly LogEvent[];
  /** Events sent again after an attempt of unknown outcome (see PublisherReport). */
  readonly uncertainEvents: number;
  /** The queue is drained: no inbox rows may be left. */
  readonly drained: boolean;
}

export function expectExactlyOnce(state: StoredState, outcome: ExpectedOutcome): void {
  const acknowledgedKeys = keysOf(outcome.acknowledged);
  const publishedKeys = keysOf(outcome.published);
  // No double: one row per key.
  expect(state.rows, 'rows stored twice').toBe(state.distinctKeys);
  // No loss: every key of every acknowledged request is stored.
  const lost = missingKeys(state, acknowledgedKeys);
  expect(lost.length, `acknowledged keys lost, e.g. ${lost.slice(0, 5).join(', ')}`).toBe(0);
  // Nothing stored that nobody sent.
  const invented = [...state.keys].filter((k) => !publishedKeys.has(k));
  expect(invented, 'keys stored that were never published').toEqual([]);
  // Exact counters, per topic and in total.
  for (const [topic, t] of state.topics) {
    expect({ topic, unique: t.uniqueProcessed, received: t.received }).toEqual({
      topic,
      unique: t.rows,
      received: t.uniqueProcessed + t.duplicateDropped,
    });
  }
  expect(state.uniqueProcessed).toBe(state.rows);
  expect(state.received).toBe(state.uniqueProcessed + state.duplicateDropped);
  // Every acknowledged event was counted; at most the re-sent ones were counted twice.
  expect(state.received).toBeGreaterThanOrEqual(outcome.acknowledged.length);
  expect(state.received).toBeLessThanOrEqual(outcome.published.length + outcome.uncertainEvents);
  if (outcome.drained) expect(state.inboxMessages).toBe(0);
}

/** The counters /stats reports are the ones in the database. */
export function expectStatsMatch(stats: Stats, state: StoredState): void {
  expect({
    received: stats.received,
    unique_processed: stats.unique_processed,
    duplicate_dropped: stats.duplicate_dropped,
  }).toEqual({
    received: state.received,
    unique_processed: state.uniqueProcessed,
    duplicate_dropped: state.duplicateDropped,
  });
}

/** GET /stats/verify: every counting equation recomputed from the tables holds. */
export async function expectVerified(base: string): Promise<void> {
  const reply = await fetch(`${base}/stats/verify`);
  const body = (await reply.json()) as {
    consistent: boolean;
    checks: { name: string; difference: number }[];
  };
  expect(
    body.checks.filter((c) => c.difference !== 0),
    'counting equations that do not hold',
  ).toEqual([]);
  expect(body.consistent).toBe(true);
}
