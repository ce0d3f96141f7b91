/**
 * A duplicate whose stored copy was committed by a concurrent transaction is invisible to the
 * transaction that drops it: it is counted as a duplicate then, and compared with the copy by the
 * upkeep afterwards. This test makes that race happen on purpose: a test transaction holds the
 * counter row of the first writer, so the first writer has inserted the key but cannot commit;
 * the second writer, on another counter shard, then waits on the key and, once the first commits,
 * finds the key taken but its row invisible to its snapshot.
 *
 * PostgreSQL only: PGlite has one connection, so no two applies ever overlap.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploymentMetrics } from '../../src/metrics.js';
import type { Queue } from '../../src/queue/queue.js';
import { migrated } from '../../src/store/migrate.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import { SqlStore } from '../../src/store/sql/sql-store.js';
import type { SqlDriver } from '../../src/store/sql-driver.js';
import type { QueuedBatch } from '../../src/store/store.js';
import { needsPostgres } from '../helpers/environment.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

// Any backend on PostgreSQL will do: only its database is used.
const postgres = suiteBackends().find((b) => needsPostgres(b.name));

/** The queue is not part of this race; the metrics only read its depth. */
const idleQueue = { depth: () => Promise.resolve({ events: 0, messages: 0 }) } as unknown as Queue;

async function exportedDuplicates(metrics: DeploymentMetrics): Promise<number> {
  const text = await (await metrics.refresh()).metrics();
  return Number(/^aggregator_events_duplicate_total (\S+)$/m.exec(text)?.[1]);
}

function message(id: string, events: { event_id: string; payload: object }[]): QueuedBatch {
  return {
    id,
    body: JSON.stringify({
      events: events.map((e) => ({
        topic: 'race',
        event_id: e.event_id,
        timestamp: '2024-05-01T12:00:00Z',
        source: 'svc',
        payload: e.payload,
      })),
    }),
  };
}

describe.skipIf(postgres === undefined || postgres.skip !== undefined)(
  `late conflicts on postgres${postgres === undefined ? ' (SKIPPED: no PostgreSQL backend requested)' : postgres.skip === undefined ? '' : ` (SKIPPED: ${postgres.skip})`}`,
  () => {
    let resources: TestResources;
    let driver: SqlDriver;
    let blocker: pg.Client;
    // Not the blocker: inside a transaction pg_stat_activity answers from a snapshot.
    let observer: pg.Client;

    beforeAll(async () => {
      resources = await createResources(postgres?.name ?? 'postgres-inbox');
      driver = await migrated(
        new PgDriver({ connectionString: resources.databaseUrl ?? '', poolSize: 4 }),
      );
      blocker = new pg.Client({ connectionString: resources.databaseUrl });
      observer = new pg.Client({ connectionString: resources.databaseUrl });
      await Promise.all([blocker.connect(), observer.connect()]);
    });
    afterAll(async () => {
      await Promise.all([blocker.end(), observer.end()]);
      await driver.close();
      await resources.dispose();
    });

    /** Waits until `count` other sessions wait on a lock. */
    async function waitForLockWaiters(count: number): Promise<void> {
      for (let i = 0; i < 200; i++) {
        const { rows } = await observer.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if ((rows[0]?.n ?? 0) >= count) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const { rows } = await observer.query(
        `SELECT pid, state, wait_event_type, wait_event, left(query, 60) AS q FROM pg_stat_activity WHERE datname = current_database()`,
      );
      throw new Error(`never saw ${count} sessions waiting on a lock: ${JSON.stringify(rows)}`);
    }

    for (const policy of ['drop', 'reject-conflicts'] as const) {
      it(`${policy}: the settling counts the conflict and corrects the receipt`, async () => {
        const store = new SqlStore(driver, 'postgres', {
          duplicatePolicy: policy === 'drop' ? undefined : policy,
        });
        const key = `k-${policy}`;
        // The counter row of shard 0 exists, so the first writer must update (and lock) it.
        await store.applyBatches(
          [message(`warm-${policy}`, [{ event_id: `w-${policy}`, payload: {} }])],
          0,
        );

        await blocker.query('BEGIN');
        await blocker.query(
          `SELECT 1 FROM topic_counters WHERE topic = 'race' AND shard = 0 FOR UPDATE`,
        );
        const first = store.applyBatches(
          [message(`a-${policy}`, [{ event_id: key, payload: { v: 1 } }])],
          0,
        );
        await waitForLockWaiters(1);
        const second = store.applyBatches(
          [
            message(`b-${policy}`, [
              { event_id: `fresh-${policy}`, payload: {} },
              { event_id: key, payload: { v: 2 } },
            ]),
          ],
          1,
        );
        await waitForLockWaiters(2);
        await blocker.query('COMMIT');
        expect(await first).toMatchObject({ inserted: 1, duplicates: 0 });
        // Invisible to the second writer: counted as a plain duplicate for now.
        expect(await second).toMatchObject({ inserted: 1, duplicates: 1, conflicts: 0 });
        expect((await store.receipt(`b-${policy}`))?.map((o) => o.conflict)).toEqual([
          false,
          false,
        ]);

        // The exported duplicates counter, read from the same rows, must not go down when the
        // settling moves a dropped duplicate to rejected.
        const metrics = new DeploymentMetrics(store, idleQueue);
        const duplicatesBefore = await exportedDuplicates(metrics);
        const statsBefore = await store.counters();

        expect(await store.resolvePendingConflicts(1000)).toBe(1);

        const statsAfter = await store.counters();
        expect(statsAfter.duplicateDropped).toBe(
          statsBefore.duplicateDropped - (policy === 'drop' ? 0 : 1),
        );
        expect(await exportedDuplicates(metrics)).toBe(duplicatesBefore);

        const outcome = policy === 'drop' ? 'duplicate' : 'rejected';
        expect(await store.receipt(`b-${policy}`)).toEqual([
          { index: 0, outcome: 'stored', conflict: false, originalProcessedAt: undefined },
          { index: 1, outcome, conflict: true, originalProcessedAt: undefined },
        ]);
        const [conflict] = await store.listConflicts({ topic: 'race', limit: 10 });
        expect(conflict).toMatchObject({
          eventId: key,
          rejected: policy !== 'drop',
          differs: ['payload'],
        });
        expect((await store.verify()).filter((check) => check.difference !== 0)).toEqual([]);
        // Settled once: nothing is left to compare.
        expect(await store.resolvePendingConflicts(1000)).toBe(0);
      });
    }
  },
);
