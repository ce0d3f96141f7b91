/**
 * Storage that grows (migration 0009, docs/storage.md), on both stores: keys in event_keys,
 * events partitioned by event time with a default partition for everything else, partitions
 * created ahead and out of the default, retention dropping whole partitions with exact counts,
 * and the migration of a store holding data in the old single table.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/store/migrate.js';
import {
  addIntervals,
  DEFAULT_PARTITION,
  intervalStart,
  listPartitions,
  PARTITION_WINDOWS,
  partitionName,
} from '../../src/store/sql/partitions.js';
import { RETENTION_SHARD } from '../../src/store/counter-shards.js';
import { SqlStore } from '../../src/store/sql/sql-store.js';
import { prepareStorage } from '../../src/store/sql/storage-options.js';
import type { SqlDriver } from '../../src/store/sql-driver.js';
import type { QueuedBatch, Store } from '../../src/store/store.js';
import { contractBackends } from '../contract/contract-backends.js';
import { openMigrated, SQL_BACKENDS, type OpenedSql } from '../helpers/sql-backends.js';

const DAY = 24 * 3600_000;

function message(events: object[]): QueuedBatch {
  return { id: `m-${randomUUID()}`, body: JSON.stringify({ events }) };
}

const ev = (topic: string, id: string, timestamp: string, payload: object = { n: id }) => ({
  topic,
  event_id: id,
  timestamp,
  source: 'svc',
  payload,
});

async function expectConsistent(store: Store): Promise<void> {
  for (const check of await store.verify()) {
    expect(check, check.name).toMatchObject({ difference: 0 });
  }
}

/** Which table holds each event of `topic`, by event id. */
async function homes(driver: SqlDriver, topic: string): Promise<Record<string, string>> {
  const rows = await driver.query<{ event_id: string; home: string }>(
    `SELECT event_id, tableoid::regclass::text AS home FROM events WHERE topic = $1`,
    [topic],
  );
  return Object.fromEntries(rows.map((r) => [r.event_id, r.home]));
}

for (const { backend, skip } of contractBackends(SQL_BACKENDS)) {
  describe.skipIf(skip !== undefined)(
    `partitioned storage on ${backend.name}${skip ? ` (SKIPPED: ${skip})` : ''}`,
    () => {
      const opened: OpenedSql[] = [];
      afterEach(async () => {
        for (const o of opened.splice(0)) await o.dispose();
      });
      /** A migrated store of its own, with no partition yet. */
      const open = async (): Promise<OpenedSql> => {
        const o = await openMigrated(backend);
        opened.push(o);
        return o;
      };

      it('creates partitions around now; year 1 and 9999 go to the default partition, stored and listed', async () => {
        const { driver, store } = await open();
        const now = new Date();
        // Several processes' upkeeps at once (PostgreSQL: concurrent connections): each partition
        // is created once, by one of them, and none fails.
        const created = (
          await Promise.all([1, 2, 3, 4].map(() => store.maintainPartitions(now)))
        ).flat();
        const { back, ahead } = PARTITION_WINDOWS.day;
        expect(created).toHaveLength(back + ahead + 1);
        expect(new Set(created).size).toBe(created.length);
        expect(created).toContain(partitionName(intervalStart('day', now)));
        // Created already: nothing to do, from this or any other process.
        expect(await store.maintainPartitions(now)).toEqual([]);

        const t = `test-${randomUUID()}`;
        const today = now.toISOString();
        const events = [
          ev(t, 'year-1', '0001-01-01T00:00:00Z'),
          ev(t, 'year-9999', '9999-12-31T23:59:59.999999Z'),
          ev(t, 'today', today),
          ev(t, 'in-two-days', new Date(now.getTime() + 2 * DAY).toISOString()),
        ];
        expect(await store.applyBatches([message(events)], 0)).toMatchObject({ inserted: 4 });
        // Bad timestamps never create partitions.
        expect(await store.maintainPartitions(now)).toEqual([]);
        expect(await listPartitions(driver)).toHaveLength(back + ahead + 1);
        expect(await homes(driver, t)).toEqual({
          'year-1': DEFAULT_PARTITION,
          'year-9999': DEFAULT_PARTITION,
          today: partitionName(intervalStart('day', now)),
          'in-two-days': partitionName(addIntervals('day', intervalStart('day', now), 2)),
        });
        const listed = await store.listEvents({ topic: t, limit: 10, offset: 0, order: 'asc' });
        expect(listed.map((e) => [e.event_id, e.timestamp])).toEqual([
          ['year-1', '0001-01-01T00:00:00.000000Z'],
          ['today', listed[1]?.timestamp],
          ['in-two-days', listed[2]?.timestamp],
          ['year-9999', '9999-12-31T23:59:59.999999Z'],
        ]);
        // Newest first, the listing looks at the last day first, then wider: the same pages.
        const page = async (limit: number, offset: number) =>
          (await store.listEvents({ topic: t, limit, offset })).map((e) => e.event_id);
        expect(await page(10, 0)).toEqual(['year-9999', 'in-two-days', 'today', 'year-1']);
        expect(await page(2, 0)).toEqual(['year-9999', 'in-two-days']);
        expect(await page(1, 2)).toEqual(['today']);
        expect(await page(2, 3)).toEqual(['year-1']);
        const after = async (limit: number, cursor: { timestamp: string; id: number }) =>
          (await store.listEvents({ topic: t, limit, offset: 0, after: cursor })).map(
            (e) => e.event_id,
          );
        const [, second] = await store.listEvents({ topic: t, limit: 2, offset: 0 });
        expect(await after(1, second!)).toEqual(['today']);
        expect(await after(5, second!)).toEqual(['today', 'year-1']);
        // A copy of the year-1 event is a duplicate: the key decides, wherever the payload is.
        expect(await store.applyBatches([message([events[0]!])], 0)).toMatchObject({
          inserted: 0,
          duplicates: 1,
          conflicts: 0,
        });
        await expectConsistent(store);
      });

      it('a partition created later takes its rows out of the default partition', async () => {
        const { driver, store } = await open();
        const now = new Date();
        await store.maintainPartitions(now);
        const t = `test-${randomUUID()}`;
        const later = addIntervals('day', intervalStart('day', now), 10);
        const at = (h: number) => new Date(later.getTime() + h * 3600_000).toISOString();
        await store.applyBatches(
          [message([ev(t, 'a', at(1)), ev(t, 'b', at(23)), ev(t, 'c', at(24))])],
          0,
        );
        expect(Object.values(await homes(driver, t))).toEqual([
          DEFAULT_PARTITION,
          DEFAULT_PARTITION,
          DEFAULT_PARTITION,
        ]);
        // Ten days on, the upkeep creates that day (and those around it).
        const created = await store.maintainPartitions(new Date(later.getTime() + 3600_000));
        expect(created).toContain(partitionName(later));
        expect(await homes(driver, t)).toEqual({
          a: partitionName(later),
          b: partitionName(later),
          c: partitionName(addIntervals('day', later, 1)),
        });
        expect(await store.countEvents(t)).toBe(3);
        // A conflicting copy finds its stored copy in its new partition.
        const result = await store.applyBatches(
          [message([ev(t, 'a', at(1), { changed: true })])],
          0,
        );
        expect(result).toMatchObject({ duplicates: 1, conflicts: 1 });
        const [conflict] = await store.listConflicts({ topic: t, limit: 1 });
        expect(conflict).toMatchObject({ differs: ['payload'] });
        expect(conflict?.stored.payloadStart).toBe('{"n": "a"}');
        await expectConsistent(store);
      });

      it('retention drops whole partitions, counts every row per topic, keeps longer topics', async () => {
        const { driver, store } = await open();
        const now = new Date();
        const today = intervalStart('day', now);
        // Partitions from eleven days back (days -11..-5, then -3..3).
        await store.maintainPartitions(addIntervals('day', today, -8));
        await store.maintainPartitions(now);
        const [a, b, keep] = ['a', 'b', 'keep'].map((x) => `test-${x}-${randomUUID()}`) as [
          string,
          string,
          string,
        ];
        const day = (n: number, h = 12) =>
          new Date(addIntervals('day', today, n).getTime() + h * 3600_000).toISOString();
        const events = [
          ...Array.from({ length: 30 }, (_, i) => ev(a, `old-${i}`, day(-6, i % 24))),
          ...Array.from({ length: 20 }, (_, i) => ev(b, `old-${i}`, day(-5, i % 24))),
          ev(keep, 'old', day(-6)),
          ev(a, 'recent', day(-1)),
          ev(b, 'recent', day(0, 0)),
        ];
        await store.applyBatches([message(events)], 0);
        const partitionsBefore = (await listPartitions(driver)).length;
        // Retention of four days: days -11..-5 are wholly older; day -4 (in the default) is not.
        const cutoff = new Date(now.getTime() - 4 * DAY);
        // Ingest goes on while the partitions are dropped.
        const live = `test-live-${randomUUID()}`;
        const ingest = (async () => {
          for (let i = 0; i < 10; i++) {
            await store.applyBatches(
              [message([ev(live, `l${i}`, day(0, 1)), ev(a, 'recent', day(-1))])],
              0,
            );
          }
        })();
        const dropped = await store.dropPartitions(cutoff, [keep]);
        await ingest;
        expect(dropped).toMatchObject({ partitions: 7, events: 50, kept: 1 });
        expect((await listPartitions(driver)).length).toBe(partitionsBefore - 7);
        expect(await store.dropPartitions(cutoff, [keep])).toEqual({
          partitions: 0,
          events: 0,
          kept: 0,
          exclusiveMs: 0,
        });
        const summaries = await store.topicSummaries();
        const expired = (topic: string) => summaries.find((s) => s.topic === topic)?.expired;
        expect([expired(a), expired(b), expired(keep)]).toEqual([30, 20, 0]);
        expect(await store.counters()).toMatchObject({
          expired: 50,
          uniqueProcessed: 63,
          duplicateDropped: 10,
        });
        // The kept topic's row lives on in the default partition.
        expect(await homes(driver, keep)).toEqual({ old: DEFAULT_PARTITION });
        expect(await store.countEvents()).toBe(13);
        await expectConsistent(store);
        // Keys outlive payloads: a late copy is a duplicate, even of a dropped row.
        expect(await store.applyBatches([message([ev(a, 'old-0', day(-6, 0))])], 0)).toMatchObject({
          inserted: 0,
          duplicates: 1,
        });
        // ... until they are forgotten, only those without payload.
        expect(await store.forgetKeys(cutoff, 1000)).toBe(50);
        expect(await store.forgetKeys(cutoff, 1000)).toBe(0);
        expect(await store.counters()).toMatchObject({ keysExpired: 50 });
        await expectConsistent(store);
        expect(await store.applyBatches([message([ev(a, 'old-0', day(-6, 0))])], 0)).toMatchObject({
          inserted: 1,
        });
        await expectConsistent(store);
      });

      it.skipIf(backend.name === 'pglite')(
        'a drop queued behind a long transaction lets applies through meanwhile, then drops',
        async () => {
          const { driver, store } = await open();
          await store.maintainPartitions(new Date());
          const [oldest] = await listPartitions(driver);
          if (oldest === undefined) throw new Error('no partition');
          const topic = `test-queued-${randomUUID()}`;
          await store.applyBatches([message([ev(topic, 'old', oldest.from.toISOString())])], 0);
          // A long read holds the table until released: the detach cannot have its lock.
          let release = () => {};
          const held = new Promise<void>((resolve) => (release = resolve));
          let reading!: Promise<void>;
          const readerIn = new Promise<void>((entered) => {
            reading = driver.transaction(async (tx) => {
              await tx.query('SELECT count(*) FROM events');
              entered();
              await held;
            });
          });
          await readerIn;
          const dropping = store.dropPartitions(oldest.to, []);
          // Until the detach is seen waiting for its lock.
          for (;;) {
            const waiting = await driver.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity
               WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE events DETACH%'`,
            );
            if ((waiting[0]?.n ?? 0) > 0) break;
            await new Promise((r) => setTimeout(r, 5));
          }
          // An apply started now gets through while the long read still holds the table.
          const applied = store
            .applyBatches([message([ev(topic, 'new', new Date().toISOString())])], 0)
            .then(() => 'applied' as const);
          const stuck = new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 10_000));
          const first = await Promise.race([applied, stuck]);
          release();
          await reading;
          expect(first).toBe('applied');
          expect(await dropping).toMatchObject({ partitions: 1, events: 1 });
          expect(Object.keys(await homes(driver, topic))).toEqual(['new']);
          await expectConsistent(store);
        },
      );

      it('a partition left detached by a crash before its drop is dropped by the next pass, its rows not counted again', async () => {
        const { driver, store } = await open();
        await store.maintainPartitions(new Date());
        const [oldest] = await listPartitions(driver);
        if (oldest === undefined) throw new Error('no partition');
        const topic = `test-detached-${randomUUID()}`;
        await store.applyBatches([message([ev(topic, 'x', oldest.from.toISOString())])], 0);
        expect(await homes(driver, topic)).toEqual({ x: oldest.name });
        // What the first step leaves: rows counted as expired, the table detached, not dropped.
        await driver.transaction(async (tx) => {
          await tx.query(
            `INSERT INTO topic_counters (topic, shard, expired) VALUES ($1, ${RETENTION_SHARD}, 1)`,
            [topic],
          );
          await tx.query(`ALTER TABLE events DETACH PARTITION ${oldest.name}`);
        });
        // A table of another name is none of the drop's business.
        await driver.query('CREATE TABLE IF NOT EXISTS events_p_notes (note text)');
        const leftovers = () =>
          driver.query<{ name: string }>(
            "SELECT relname::text AS name FROM pg_class WHERE relname IN ($1, 'events_p_notes') ORDER BY 1",
            [oldest.name],
          );
        expect((await leftovers()).map((r) => r.name)).toEqual([oldest.name, 'events_p_notes']);
        expect(await store.dropPartitions(oldest.from, [])).toMatchObject({
          partitions: 0,
          events: 0,
        });
        expect((await leftovers()).map((r) => r.name)).toEqual(['events_p_notes']);
        await driver.query('DROP TABLE events_p_notes');
        expect(await store.counters()).toMatchObject({ expired: 1, uniqueProcessed: 1 });
        await expectConsistent(store);
      });

      it('row by row: the default partition at RETENTION_DAYS, a topic at its own days', async () => {
        const { store } = await open();
        const now = new Date();
        await store.maintainPartitions(now);
        const [t, short] = [`test-${randomUUID()}`, `test-short-${randomUUID()}`];
        const ago = (d: number) => new Date(now.getTime() - d * DAY).toISOString();
        await store.applyBatches(
          [
            message([
              ev(t, 'ancient', '2001-01-01T00:00:00Z'),
              ev(t, 'forty', ago(40)),
              ev(t, 'today', ago(0)),
              ev(short, 'ancient', '2001-01-01T00:00:00Z'),
              ev(short, 'two-days', ago(2)),
              ev(short, 'today', ago(0)),
            ]),
          ],
          0,
        );
        const cutoff = new Date(now.getTime() - 30 * DAY);
        expect(await store.expireUnpartitioned(cutoff, 1, [short])).toBe(1);
        expect(await store.expireUnpartitioned(cutoff, 10, [short])).toBe(1);
        expect(await store.expireUnpartitioned(cutoff, 10, [short])).toBe(0);
        expect(await store.expireEvents(short, new Date(now.getTime() - DAY), 10)).toBe(2);
        const ids = async (topic: string) =>
          (await store.listEvents({ topic, limit: 10, offset: 0 })).map((e) => e.event_id);
        expect(await ids(t)).toEqual(['today']);
        expect(await ids(short)).toEqual(['today']);
        expect(await store.counters()).toMatchObject({ expired: 4 });
        await expectConsistent(store);
        // Keys are forgotten only once their payload is gone, and only of the topics asked for.
        const later = new Date(Date.now() + 1000);
        expect(await store.forgetKeys(later, 10, { only: [short] })).toBe(2);
        expect(await store.forgetKeys(later, 10, { except: [t] })).toBe(0);
        expect(await store.forgetKeys(later, 10)).toBe(2);
        expect(await store.counters()).toMatchObject({ expired: 4, keysExpired: 4 });
        expect(await ids(t)).toEqual(['today']);
        await expectConsistent(store);
      });

      it('migration 0009 turns a store of the single table (rows, tombstones, conflicts, counters) into keys and partitions', async () => {
        const empty = await backend.empty();
        opened.push({ ...empty, store: undefined as unknown as SqlStore });
        const { driver } = empty;
        // The schema as it was before 0009.
        const old = (await loadMigrations()).filter((m) => m.version < 9);
        await driver.transaction(async (tx) => {
          await tx.query(`CREATE TABLE schema_migrations (
            version integer PRIMARY KEY, name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())`);
          for (const m of old) {
            await tx.exec(m.sql);
            await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
              m.version,
              m.name,
            ]);
          }
        });
        const now = new Date();
        const recent = new Date(now.getTime() - 3600_000).toISOString();
        const weekAgo = new Date(now.getTime() - 7 * DAY).toISOString();
        // 5 received: 4 stored (1 of them expired since, a tombstone), 1 conflicting duplicate.
        await driver.exec(`
          INSERT INTO events (topic, event_id, "timestamp", source, payload, content_hash,
                              processed_at, expired_at)
          VALUES ('t', 'live-1', '${recent}', 'svc', '{"n": 1}', 11, now(), NULL),
                 ('t', 'live-2', '${weekAgo}', 'svc', '{"n": 2}', 12, now(), NULL),
                 ('u', 'ancient', '2001-01-01T00:00:00Z', 'svc', '{"n": 3}', 0, now(), NULL),
                 ('t', 'gone', '2002-01-01T00:00:00Z', 'svc', '{}', 14, now(), now());
          INSERT INTO conflicts (topic, event_id, stored_hash, duplicate_hash, stored_timestamp,
                                 duplicate_timestamp, stored_source, duplicate_source,
                                 stored_payload, duplicate_payload, rejected, differs)
          VALUES ('t', 'live-1', 11, 99, '${recent}', '${recent}', 'svc', 'svc', '{"n": 1}',
                  '{"n": 9}', false, '{payload}');
          INSERT INTO topic_counters (topic, shard, received, unique_processed, duplicate_dropped,
                                      conflicting_duplicates)
          VALUES ('t', 0, 4, 3, 1, 1), ('u', 0, 1, 1, 0, 0);
          INSERT INTO topic_counters (topic, shard, expired) VALUES ('t', -1, 1);
          INSERT INTO dedup_stats (topic, source, shard, events, unique_events, duplicates,
                                   conflicts)
          VALUES ('t', 'svc', 0, 4, 3, 1, 1), ('u', 'svc', 0, 1, 1, 0, 0);
        `);
        const store = new SqlStore(driver, backend.name === 'pglite' ? 'pglite' : 'postgres');
        // 0009 and every migration after it.
        const later = (await loadMigrations()).filter((m) => m.version >= 9).map((m) => m.version);
        expect(await migrate(driver)).toEqual(later);
        expect(later[0]).toBe(9);
        await expectConsistent(store);
        const keys = await driver.query<{ event_id: string; content_hash: string }>(
          'SELECT event_id, content_hash::text FROM event_keys ORDER BY event_id',
        );
        expect(keys).toEqual([
          { event_id: 'ancient', content_hash: '0' },
          { event_id: 'gone', content_hash: '14' },
          { event_id: 'live-1', content_hash: '11' },
          { event_id: 'live-2', content_hash: '12' },
        ]);
        // The start-up step splits the default partition into the partitions of recent days.
        const created = await prepareStorage(store, {}, now);
        expect(created).toContain(partitionName(intervalStart('day', new Date(weekAgo))));
        expect(await homes(driver, 't')).toEqual({
          'live-1': partitionName(intervalStart('day', new Date(recent))),
          'live-2': partitionName(intervalStart('day', new Date(weekAgo))),
        });
        expect(await homes(driver, 'u')).toEqual({ ancient: DEFAULT_PARTITION });
        expect(await store.counters()).toMatchObject({
          received: 5,
          uniqueProcessed: 4,
          duplicateDropped: 1,
          expired: 1,
          conflictingDuplicates: 1,
        });
        await expectConsistent(store);
        // The tombstone's key still makes a late copy a duplicate; ids keep growing.
        const lastId = await store.lastEventId();
        const result = await store.applyBatches(
          [message([ev('t', 'gone', '2002-01-01T00:00:00Z', {}), ev('t', 'new', recent)])],
          0,
        );
        expect(result).toMatchObject({ inserted: 1, duplicates: 1 });
        expect(await store.lastEventId()).toBeGreaterThan(lastId);
        await expectConsistent(store);
      });
    },
  );
}
