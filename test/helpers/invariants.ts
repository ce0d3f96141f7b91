/**
 * The invariants every fault test ends with, checked on what the database really holds:
 * nothing acknowledged lost, nothing doubled, counters that add up (per topic too), and a
 * `received` explained by what the publisher sent.
 */
import { expect } from 'vitest';
import type { LogEvent } from '../../src/log-event.js';
import { waitForDrain, type Stats } from './http.js';
import { keysOf, missingKeys, type StoredState } from './stored-state.js';

interface ExpectedOutcome {
  /** Every event the publisher tried to send (acknowledged or not). */
  readonly published: readonly LogEvent[];
  /** The events of the requests answered 200: each must be stored. */
  readonly acknowledged: readonly LogEvent[];
  /** Events sent again after an attempt of unknown outcome (see PublisherReport). */
  readonly uncertainEvents: number;
  /** The queue is drained: no inbox rows may be left. */
  readonly drained: boolean;
}

function expectExactlyOnce(state: StoredState, outcome: ExpectedOutcome): void {
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
function expectStatsMatch(stats: Stats, state: StoredState): void {
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
async function expectVerified(base: string): Promise<void> {
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

export interface SettledRun {
  readonly url: string;
  /** Events the publisher sent (the drain waits for at least this many received). */
  readonly events: number;
  /** Distinct keys among them. */
  readonly unique: number;
  readonly published: readonly LogEvent[];
  readonly acknowledged: readonly LogEvent[];
  readonly uncertainEvents: number;
  /** Stops the service; it must exit 0. */
  stop(): Promise<number | string>;
  /** What the database holds. */
  readonly resources: { readState(): Promise<StoredState> };
  /** Checks to make on the live service after the drain, before it stops. */
  beforeStop?(): Promise<void>;
}

/**
 * How every fault test ends: the queue drains, /stats/verify holds, the service stops cleanly,
 * and the database holds every acknowledged event exactly once with counters that add up.
 */
export async function expectSettledExactlyOnce(
  run: SettledRun,
): Promise<{ stats: Stats; state: StoredState }> {
  const stats = await waitForDrain(run.url, run.events, 120_000);
  await expectVerified(run.url);
  await run.beforeStop?.();
  expect(await run.stop()).toBe(0);
  const state = await run.resources.readState();
  expect(state.uniqueProcessed).toBe(run.unique);
  expectStatsMatch(stats, state);
  expectExactlyOnce(state, {
    published: run.published,
    acknowledged: run.acknowledged,
    uncertainEvents: run.uncertainEvents,
    drained: true,
  });
  return { stats, state };
}
