/**
 * Property tests of the counting invariants, against the real Store (the SQL both backends run)
 * on PGlite and, when reachable, PostgreSQL, and against a small model of what must happen.
 *
 * Random queue messages carry random events over a few topics and a small pool of event ids, so
 * keys repeat within a message, across messages and across batches. They are delivered in random
 * batches, sometimes two batches at once, and a delivery may crash:
 * - before its transaction commits: nothing of it may be applied (no row, no counter, no ledger
 *   row) and the message stays queued;
 * - after the commit, before the acknowledgement: the message stays queued and is delivered
 *   again later, and the ledger must recognise it;
 * messages already acknowledged may be delivered again too (a stale consumer). After every step
 * the database must hold what the model says: each key once, stored from the first copy applied,
 * `received` = the events of the distinct messages applied, `received = unique + duplicates` and
 * `unique = rows`, per topic and in total. Once everything is delivered, every message counts
 * exactly once.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { migrated } from '../../src/store/migrate.js';
import { PgliteDriver } from '../../src/store/pglite/pglite-driver.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import { SqlStore } from '../../src/store/sql/sql-store.js';
import type { Notifications, SqlDriver, SqlQueryable } from '../../src/store/sql-driver.js';
import type { ApplyResult, QueuedBatch } from '../../src/store/store.js';
import { readStoredState } from '../helpers/stored-state.js';
import { needsPostgres, requestedBackends, type BackendName } from '../helpers/environment.js';
import { createResources, type TestResources } from '../helpers/test-service.js';

const NUM_RUNS = 80;

// ---------------------------------------------------------------------------------------------
// Crash points

class SimulatedCrash extends Error {
  constructor() {
    super('process died before COMMIT');
    this.name = 'SimulatedCrash';
  }
}

/** Set around a call whose apply statement must die before it commits. */
const crashBeforeCommit = new AsyncLocalStorage<boolean>();

/**
 * The real driver, except that an apply statement run inside `crashBeforeCommit` executes in a
 * transaction that is then rolled back: it takes its locks and does all its work, and dies just
 * before COMMIT, as a process killed at that instant would.
 */
class CrashingDriver implements SqlDriver {
  constructor(private readonly inner: SqlDriver) {}

  async query<Row>(text: string, params?: readonly unknown[], name?: string): Promise<Row[]> {
    if (crashBeforeCommit.getStore() === true && name?.startsWith('agg_apply') === true) {
      await this.inner.transaction(async (tx) => {
        await tx.query(text, params);
        throw new SimulatedCrash();
      });
    }
    return this.inner.query<Row>(text, params, name);
  }

  exec(sql: string): Promise<void> {
    return this.inner.exec(sql);
  }

  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return this.inner.transaction(fn);
  }

  listen(channel: string, notifications: Notifications): Promise<() => Promise<void>> {
    return this.inner.listen(channel, notifications);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs

interface Ev {
  readonly topic: string;
  readonly event_id: string;
}

type Crash = 'none' | 'before-commit' | 'after-commit';

interface Delivery {
  /** Indexes of the messages in the batch, distinct (a queue never hands one twice at once). */
  readonly messages: number[];
  readonly crash: Crash;
  readonly shard: number;
}

interface Scenario {
  readonly messages: Ev[][];
  /** Each step is one delivery, or two run at the same time. */
  readonly steps: Delivery[][];
}

const TOPICS = ['alpha', 'beta', 'gamma', 'δέλτα'];
const EVENT_IDS = ['0', '1', '2', '3', '4', '5', '6', '7', "it's", '"q"', 'ü', 'a b'];

const eventArb: fc.Arbitrary<Ev> = fc.record({
  topic: fc.constantFrom(...TOPICS),
  event_id: fc.constantFrom(...EVENT_IDS),
});

function deliveryArb(count: number): fc.Arbitrary<Delivery> {
  return fc.record({
    messages: fc.uniqueArray(fc.integer({ min: 0, max: count - 1 }), {
      minLength: 1,
      maxLength: Math.min(count, 6),
    }),
    crash: fc.oneof(
      { weight: 3, arbitrary: fc.constant<Crash>('none') },
      { weight: 1, arbitrary: fc.constant<Crash>('before-commit') },
      { weight: 1, arbitrary: fc.constant<Crash>('after-commit') },
    ),
    shard: fc.integer({ min: 0, max: 127 }),
  });
}

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .array(fc.array(eventArb, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 10 })
  .chain((messages) =>
    fc.record({
      messages: fc.constant(messages),
      steps: fc.array(fc.array(deliveryArb(messages.length), { minLength: 1, maxLength: 2 }), {
        maxLength: 10,
      }),
    }),
  );

const messageId = (index: number) => `${1_700_000_000_000 + index}-0`;
const keyOf = (e: Ev) => `${e.topic}\u0001${e.event_id}`;
/** Which copy of an event this is: the stored row must be one specific copy. */
const copyOf = (message: number, position: number) => `${message}:${position}`;

function batchOf(messages: Ev[][], indexes: readonly number[]): QueuedBatch[] {
  return indexes.map((m) => ({
    id: messageId(m),
    body: JSON.stringify({
      events: (messages[m] ?? []).map((e, i) => ({
        topic: e.topic,
        event_id: e.event_id,
        timestamp: '2024-05-01T12:00:00Z',
        source: `copy-${copyOf(m, i)}`,
        payload: { copy: copyOf(m, i) },
      })),
    }),
  }));
}

// ---------------------------------------------------------------------------------------------
// The model

interface TopicCounts {
  received: number;
  unique: number;
  duplicates: number;
}

class Model {
  /** Messages applied (committed) at least once. */
  readonly ledger = new Set<number>();
  /** Stored keys, each with the copies that may be the stored one. */
  readonly stored = new Map<string, Set<string>>();
  readonly topics = new Map<string, TopicCounts>();

  constructor(private readonly messages: Ev[][]) {}

  private topic(name: string): TopicCounts {
    let t = this.topics.get(name);
    if (t === undefined) {
      t = { received: 0, unique: 0, duplicates: 0 };
      this.topics.set(name, t);
    }
    return t;
  }

  /**
   * The deliveries of one step that committed (one, or two that ran at once). Returns what the
   * store must report for the step, summed over its deliveries.
   */
  apply(
    committed: readonly (readonly number[])[],
  ): Omit<ApplyResult, 'duplicates' | 'conflicts' | 'rejected'> {
    const fresh = committed.map((list) => list.filter((m) => !this.ledger.has(m)));
    const applied = new Set(fresh.flat());
    const candidates = new Map<string, Set<string>>();
    if (fresh.length === 1) {
      // One batch: within it the first copy in message order, then event order, wins.
      for (const m of fresh[0] ?? []) {
        (this.messages[m] ?? []).forEach((e, i) => {
          if (!this.stored.has(keyOf(e)) && !candidates.has(keyOf(e))) {
            candidates.set(keyOf(e), new Set([copyOf(m, i)]));
          }
        });
      }
    } else {
      // Two batches at once: any copy they carried may have won.
      for (const m of applied) {
        (this.messages[m] ?? []).forEach((e, i) => {
          if (this.stored.has(keyOf(e))) return;
          const set = candidates.get(keyOf(e)) ?? new Set<string>();
          set.add(copyOf(m, i));
          candidates.set(keyOf(e), set);
        });
      }
    }
    let received = 0;
    for (const m of applied) {
      for (const e of this.messages[m] ?? []) {
        received++;
        this.topic(e.topic).received++;
      }
      this.ledger.add(m);
    }
    for (const [key, copies] of candidates) {
      this.stored.set(key, copies);
      this.topic(key.split('\u0001')[0] ?? '').unique++;
    }
    for (const t of this.topics.values()) t.duplicates = t.received - t.unique;
    return {
      messages: applied.size,
      received,
      inserted: candidates.size,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Running a scenario against the store

interface Target {
  readonly store: SqlStore;
  readonly db: SqlDriver;
}

async function expectMatchesModel(target: Target, model: Model): Promise<void> {
  const state = await readStoredState(target.db);
  expect(state.rows).toBe(state.distinctKeys);
  expect([...state.keys].sort()).toEqual([...model.stored.keys()].sort());
  const topics = Object.fromEntries(
    [...state.topics].map(([name, t]) => {
      // unique = rows, per topic.
      expect(t.uniqueProcessed, name).toBe(t.rows);
      return [
        name,
        { received: t.received, unique: t.uniqueProcessed, duplicates: t.duplicateDropped },
      ];
    }),
  );
  expect(topics).toEqual(Object.fromEntries(model.topics));
  expect(state.received).toBe(state.uniqueProcessed + state.duplicateDropped);
  const ledger = await target.db.query<{ message_id: string }>(
    'SELECT message_id FROM applied_messages',
  );
  expect(ledger.map((r) => r.message_id).sort()).toEqual([...model.ledger].map(messageId).sort());
  // The store's own read path agrees with the tables.
  const counters = await target.store.counters();
  expect(counters).toMatchObject({
    received: state.received,
    uniqueProcessed: state.uniqueProcessed,
    duplicateDropped: state.duplicateDropped,
  });
  expect(await target.store.countEvents()).toBe(state.rows);
  // What GET /stats/verify recomputes from the tables agrees too.
  expect((await target.store.verify()).filter((c) => c.difference !== 0)).toEqual([]);
}

async function runScenario(target: Target, scenario: Scenario): Promise<void> {
  await target.db.exec(
    'TRUNCATE event_keys, events, topic_counters, applied_messages, inbox, dead_letters, conflicts, pending_conflict_checks, dedup_stats, dedup_delays, receipts RESTART IDENTITY',
  );
  const { messages } = scenario;
  const model = new Model(messages);
  /** Messages not acknowledged yet: the queue still holds them. */
  const queued = new Set(messages.map((_, i) => i));

  const deliver = async (d: Delivery): Promise<ApplyResult | undefined> => {
    const batch = batchOf(messages, d.messages);
    if (d.crash === 'before-commit') {
      await expect(
        crashBeforeCommit.run(true, () => target.store.applyBatches(batch, d.shard)),
      ).rejects.toThrow(SimulatedCrash);
      return undefined;
    }
    const result = await target.store.applyBatches(batch, d.shard);
    // Crashed after the commit: never acknowledged, so the queue delivers it again later.
    if (d.crash === 'none') for (const m of d.messages) queued.delete(m);
    return result;
  };

  const step = async (deliveries: readonly Delivery[]) => {
    const results = await Promise.all(deliveries.map(deliver));
    const expected = model.apply(
      deliveries.filter((d) => d.crash !== 'before-commit').map((d) => d.messages),
    );
    const sum = { messages: 0, received: 0, inserted: 0, duplicates: 0 };
    for (const r of results) {
      if (r === undefined) continue;
      sum.messages += r.messages;
      sum.received += r.received;
      sum.inserted += r.inserted;
      sum.duplicates += r.duplicates;
    }
    expect(sum).toEqual({ ...expected, duplicates: expected.received - expected.inserted });
    await expectMatchesModel(target, model);
  };

  for (const deliveries of scenario.steps) await step(deliveries);
  // Drain: everything still queued is delivered, without crashes, five messages a batch.
  while (queued.size > 0) {
    await step([{ messages: [...queued].slice(0, 5), crash: 'none', shard: 1 }]);
  }

  // Every message counted exactly once, whatever happened on the way.
  const allEvents = messages.flat();
  const state = await readStoredState(target.db);
  expect(state.received).toBe(allEvents.length);
  expect(state.uniqueProcessed).toBe(new Set(allEvents.map(keyOf)).size);
  // Each stored row is the copy the model says won (the first applied), whole.
  const rows = await target.db.query<{
    topic: string;
    event_id: string;
    source: string;
    payload: { copy: string };
  }>('SELECT topic, event_id, source, payload FROM events');
  for (const row of rows) {
    const allowed = model.stored.get(keyOf(row));
    expect(allowed, `${row.topic}/${row.event_id}`).toBeDefined();
    expect([...(allowed ?? [])]).toContain(row.payload.copy);
    expect(row.source).toBe(`copy-${row.payload.copy}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The inbox: apply and delete in one transaction, claims never shared

interface InboxScenario {
  readonly messages: Ev[][];
  /** Each step: one or two `applyNext` calls at once, each claiming up to `take` messages. */
  readonly steps: { take: number; crash: boolean }[][];
}

const inboxScenarioArb: fc.Arbitrary<InboxScenario> = fc.record({
  messages: fc.array(fc.array(eventArb, { minLength: 1, maxLength: 8 }), {
    minLength: 1,
    maxLength: 12,
  }),
  steps: fc.array(
    fc.array(fc.record({ take: fc.integer({ min: 1, max: 5 }), crash: fc.boolean() }), {
      minLength: 1,
      maxLength: 2,
    }),
    { maxLength: 8 },
  ),
});

async function runInboxScenario(target: Target, scenario: InboxScenario): Promise<void> {
  await target.db.exec(
    'TRUNCATE event_keys, events, topic_counters, applied_messages, inbox, dead_letters, conflicts, pending_conflict_checks, dedup_stats, dedup_delays, receipts RESTART IDENTITY',
  );
  const batches = batchOf(scenario.messages, [...scenario.messages.keys()]);
  await target.store.inbox.append(
    batches.map((b, i) => ({ body: b.body, eventCount: scenario.messages[i]?.length ?? 0 })),
  );
  const depthBefore = await target.db.query<{ n: number }>(
    'SELECT coalesce(sum(jsonb_array_length(events)), 0)::float8 AS n FROM inbox',
  );
  let waiting = depthBefore[0]?.n ?? 0;
  expect(waiting).toBe(scenario.messages.flat().length);

  const step = async (calls: readonly { take: number; crash: boolean }[]) => {
    const results = await Promise.all(
      calls.map(async (c, i) => {
        if (!c.crash) return target.store.inbox.applyNext(c.take, 100 + i);
        await expect(
          crashBeforeCommit.run(true, () => target.store.inbox.applyNext(c.take, 100 + i)),
        ).rejects.toThrow(SimulatedCrash);
        return undefined;
      }),
    );
    const left = await target.db.query<{ n: number }>(
      'SELECT coalesce(sum(jsonb_array_length(events)), 0)::float8 AS n FROM inbox',
    );
    const now = left[0]?.n ?? 0;
    // What left the inbox is exactly what was counted as received: no loss, no double.
    const received = results.reduce((n, r) => n + (r?.received ?? 0), 0);
    expect(received).toBe(waiting - now);
    waiting = now;
    const state = await readStoredState(target.db);
    expect(state.rows).toBe(state.distinctKeys);
    expect(state.uniqueProcessed).toBe(state.rows);
    expect(state.received).toBe(state.uniqueProcessed + state.duplicateDropped);
    for (const t of state.topics.values()) {
      expect(t.uniqueProcessed).toBe(t.rows);
      expect(t.received).toBe(t.uniqueProcessed + t.duplicateDropped);
    }
  };
  for (const calls of scenario.steps) await step(calls);
  while (waiting > 0) await step([{ take: 5, crash: false }]);

  const all = scenario.messages.flat();
  const state = await readStoredState(target.db);
  expect(state.inboxMessages).toBe(0);
  expect(state.received).toBe(all.length);
  expect(state.uniqueProcessed).toBe(new Set(all.map(keyOf)).size);
  // Nothing went through the ledger: the inbox needs none.
  expect(await target.db.query('SELECT 1 FROM applied_messages')).toEqual([]);
}

// ---------------------------------------------------------------------------------------------

/** The two stores: PGlite always, PostgreSQL when BACKENDS asks for it (and it is reachable). */
const requested = requestedBackends();
const stores: { kind: 'pglite' | 'postgres'; backend: BackendName; skip: string | undefined }[] =
  [];
if (requested.includes('pglite-inbox')) {
  stores.push({ kind: 'pglite', backend: 'pglite-inbox', skip: undefined });
}
if (requested.some(needsPostgres)) {
  const skip = inject('postgresAvailable') ? undefined : 'PostgreSQL not reachable';
  stores.push({ kind: 'postgres', backend: 'postgres-inbox', skip });
}

for (const { kind, backend, skip } of stores) {
  describe.skipIf(skip !== undefined)(
    `counting properties of the ${kind} store${skip === undefined ? '' : ` (SKIPPED: ${skip})`}`,
    () => {
      let resources: TestResources;
      let target: Target;
      beforeAll(async () => {
        resources = await createResources(backend);
        const driver =
          kind === 'postgres'
            ? new PgDriver({ connectionString: resources.databaseUrl ?? '', poolSize: 4 })
            : await PgliteDriver.open(resources.env.DATA_DIR ?? '');
        const db = await migrated(driver);
        target = { db, store: new SqlStore(new CrashingDriver(db), kind) };
      });
      afterAll(async () => {
        await target?.db.close();
        await resources?.dispose();
      });

      it('redeliveries and crashes before or after the commit never change what is counted', async () => {
        await fc.assert(
          fc.asyncProperty(scenarioArb, (scenario) => runScenario(target, scenario)),
          { numRuns: NUM_RUNS },
        );
      }, 90_000);

      // The queues never hand out one entry twice in a read, but the store's contract ("messages
      // already in the ledger are skipped") holds within one call too.
      it('a message given twice in one call counts once', async () => {
        await target.db.exec(
          'TRUNCATE event_keys, events, topic_counters, applied_messages, inbox, dead_letters, conflicts, pending_conflict_checks, dedup_stats, dedup_delays, receipts RESTART IDENTITY',
        );
        const [message] = batchOf([[{ topic: 'alpha', event_id: '1' }]], [0]);
        if (message === undefined) throw new Error('no message');
        const result = await target.store.applyBatches([message, message], 0);
        expect(result).toEqual({
          messages: 1,
          received: 1,
          inserted: 1,
          duplicates: 0,
          conflicts: 0,
          rejected: 0,
        });
        expect(await target.store.counters()).toMatchObject({ received: 1, duplicateDropped: 0 });
      });

      it('inbox: a message leaves the inbox exactly when it is counted, whatever crashes', async () => {
        await fc.assert(
          fc.asyncProperty(inboxScenarioArb, (scenario) => runInboxScenario(target, scenario)),
          { numRuns: NUM_RUNS },
        );
      }, 90_000);
    },
  );
}
