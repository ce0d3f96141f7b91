/**
 * Search granules (migration 0011, granule-words.ts) on every SQL backend: each apply writes one,
 * and a term too rare for the bounded scan is found through them, whichever apply path stored
 * it, however its case or number was written, in an old batch or a late event, with the
 * listing and the histogram agreeing with a check of every stored event in JavaScript
 * (event-match.ts). Retention forgets a granule only when none of its rows is left; a queue
 * message written without words (before 0011) gets its granule's words in SQL.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { FieldFilter } from '../../src/search/field-filters.js';
import { GRANULE_EVENTS } from '../../src/search/granule-words.js';
import { matchesFields, matchesTerms } from '../../src/search/event-match.js';
import { SCAN_WINDOW } from '../../src/store/sql/search.js';
import type { QueuedBatch } from '../../src/store/store.js';
import { contractBackends } from '../contract/contract-backends.js';
import { openMigrated, SQL_BACKENDS, type OpenedSql } from '../helpers/sql-backends.js';

const HOUR = 3600_000;
const NOW = Date.now();

interface TestEvent {
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
  payload: Record<string, unknown>;
}

/** Event i of the filler: common words, an id of its own, a status. */
function filler(topic: string, i: number, ageHours: number): TestEvent {
  return {
    topic,
    event_id: `f${i}`,
    timestamp: new Date(NOW - ageHours * HOUR).toISOString(),
    source: `host-${i % 7}`,
    payload: {
      level: i % 5 === 0 ? 'error' : 'info',
      msg: `checkout ok after ${i % 997}ms`,
      req: `req-${(i * 7919).toString(16)}`,
      http: { status: i % 5 === 0 ? 500 : 200 },
    },
  };
}

const body = (events: readonly TestEvent[]) => JSON.stringify({ events });
const message = (text: string): QueuedBatch => ({ id: `m-${randomUUID()}`, body: text });

for (const { backend, skip } of contractBackends(SQL_BACKENDS)) {
  describe.skipIf(skip !== undefined)(
    `search granules on ${backend.name}${skip ? ` (SKIPPED: ${skip})` : ''}`,
    () => {
      const opened: OpenedSql[] = [];
      afterEach(async () => {
        for (const o of opened.splice(0)) await o.dispose();
      });
      const open = async () => {
        const o = await openMigrated(backend);
        opened.push(o);
        await o.store.maintainPartitions(new Date(NOW));
        return o;
      };

      it('a rare term is found through the granules on every apply path, as a full scan finds it', async () => {
        const { driver, store } = await open();
        const t = `granules-${randomUUID()}`;
        const stored: TestEvent[] = [];
        // The oldest batch (queue messages): the rare events the queries look for.
        const rare: TestEvent[] = [
          {
            ...filler(t, 100_001, 40),
            event_id: 'rare-case',
            payload: { msg: 'payment REFUSED by DB-77', req: 'REQ-9F3527F1' },
          },
          {
            ...filler(t, 100_002, 40),
            event_id: 'rare-field',
            payload: { user: { id: 'user-4242' }, n: 7777777 },
          },
        ];
        const oldBatch = [...rare, ...Array.from({ length: 500 }, (_, i) => filler(t, i, 39))];
        // A number written as 7777777.0 is stored as written; the query asks for 7777777.
        const numbered = body(oldBatch).replace('"n":7777777}', '"n":7777777.0}');
        expect(numbered).not.toBe(body(oldBatch));
        await store.applyBatches([message(numbered)], 0);
        stored.push(...oldBatch);
        // Newer applies through each other path: queue batches, atomic publishes, the inbox.
        for (let b = 1; b <= 5; b++) {
          const events = Array.from({ length: 500 }, (_, i) => filler(t, b * 1000 + i, 30 - b));
          stored.push(...events);
          if (b === 2) await store.applyAccepted({ body: body(events), eventCount: 500 }, 0);
          else if (b === 3) {
            await store.applyAccepted({ body: body(events), eventCount: 500 }, 0, { detail: true });
          } else if (b === 4) {
            await store.inbox.append([{ body: body(events), eventCount: 500 }]);
            await store.inbox.applyNext(10, 0);
          } else await store.applyBatches([message(body(events))], 0);
        }
        // A late event (event time 20 days back) in the newest apply.
        const late = {
          ...filler(t, 100_003, 480),
          event_id: 'late',
          payload: { msg: 'zz-late-999' },
        };
        const newest = [late, ...Array.from({ length: 100 }, (_, i) => filler(t, 9000 + i, 1))];
        await store.applyBatches([message(body(newest))], 0);
        stored.push(...newest);
        expect(stored.length).toBeGreaterThan(SCAN_WINDOW);

        const [granules] = await driver.query<{ n: number }>(
          'SELECT count(*)::float8 AS n FROM event_granules',
        );
        // Messages of 502, 500 (x5) and 101 events, cut into runs of GRANULE_EVENTS (128).
        expect(granules?.n).toBe(4 + 5 * 4 + 1);
        // Each run's rows got consecutive ids (one apply at a time here), whatever their keys'
        // order: a granule reads no more rows than its own.
        const [span] = await driver.query<{ widest: number }>(
          'SELECT max(last_id - first_id + 1)::float8 AS widest FROM event_granules',
        );
        expect(span?.widest).toBe(GRANULE_EVENTS);

        const since = new Date(NOW - 30 * 24 * HOUR).toISOString();
        const until = new Date(NOW + HOUR).toISOString();
        const queries: { terms?: string[]; fields?: FieldFilter[] }[] = [
          { terms: ['req-9f3527f1'] },
          { terms: ['9F3527'] },
          { terms: ['refused by db-77'] },
          { terms: ['payment', 'db-77'] },
          { terms: ['zz-late-999'] },
          { fields: [{ path: ['user', 'id'], value: 'user-4242' }] },
          { fields: [{ path: ['n'], value: 7777777 }] },
          { terms: ['host-3', 'req-1f1'] },
          { terms: ['nowhere-123456'] },
        ];
        for (const q of queries) {
          const expected = stored
            .filter(
              (e) =>
                e.topic === t &&
                matchesTerms(e.source, e.payload, q.terms ?? []) &&
                matchesFields(e.payload, q.fields ?? []),
            )
            .map((e) => e.event_id)
            .sort();
          const listed = await store.listEvents({ topic: t, limit: 1000, offset: 0, ...q });
          expect(listed.map((e) => e.event_id).sort(), JSON.stringify(q)).toEqual(expected);
          const buckets = await store.histogram({ topic: t, since, until, interval: '1d', ...q });
          expect(
            buckets.reduce((sum, b) => sum + b.count, 0),
            JSON.stringify(q),
          ).toBe(expected.length);
        }
        // The rare ones, named: the check above would pass on an empty store.
        const named = async (q: { terms?: string[]; fields?: FieldFilter[] }) =>
          (await store.listEvents({ topic: t, limit: 10, offset: 0, ...q })).map((e) => e.event_id);
        expect(await named({ terms: ['req-9f3527f1'] })).toEqual(['rare-case']);
        expect(await named({ terms: ['zz-late-999'] })).toEqual(['late']);
        expect(await named({ fields: [{ path: ['user', 'id'], value: 'user-4242' }] })).toEqual([
          'rare-field',
        ]);
        expect(await named({ fields: [{ path: ['n'], value: 7777777 }] })).toEqual(['rare-field']);
      });

      it('a queue message written without words gets its granule from its events in SQL', async () => {
        const { driver, store } = await open();
        const t = `granules-${randomUUID()}`;
        const events = [
          { ...filler(t, 1, 2), payload: { msg: 'written before 0011: qq-old-4711' } },
        ];
        await driver.query(`INSERT INTO inbox (events, event_count) VALUES ($1::jsonb, 1)`, [
          JSON.stringify(events),
        ]);
        expect((await store.inbox.applyNext(10, 0)).inserted).toBe(1);
        const [granule] = await driver.query<{ words: string }>('SELECT words FROM event_granules');
        expect(granule?.words.split('\n')).toEqual(
          expect.arrayContaining(['qq-old-4711', 'host-1', 'before']),
        );
      });

      it('retention forgets a granule once none of its rows is stored, and keeps the others', async () => {
        const { driver, store } = await open();
        const gone = `granules-gone-${randomUUID()}`;
        const kept = `granules-kept-${randomUUID()}`;
        const old = (topic: string, i: number, extra = {}) => ({
          ...filler(topic, i, 24 * 10),
          ...extra,
        });
        // One apply of the expiring topic alone, one of both topics.
        await store.applyBatches([message(body([old(gone, 1), old(gone, 2)]))], 0);
        await store.applyBatches(
          [message(body([old(gone, 3), old(kept, 4, { payload: { msg: 'kk-kept-31337' } })]))],
          0,
        );
        const before = new Date(NOW - 24 * HOUR);
        expect(await store.expireEvents(gone, before, 100)).toBe(3);
        expect(await store.forgetGranules(before, 100)).toBe(1);
        expect(await store.forgetGranules(before, 100)).toBe(0);
        const [left] = await driver.query<{ n: number }>(
          'SELECT count(*)::float8 AS n FROM event_granules',
        );
        expect(left?.n).toBe(1);
        const found = await store.listEvents({ terms: ['kk-kept-31337'], limit: 10, offset: 0 });
        expect(found.map((e) => e.topic)).toEqual([kept]);
        // Once its last row is gone too, the other goes, but only with a bound after its events.
        expect(await store.expireEvents(kept, before, 100)).toBe(1);
        expect(await store.forgetGranules(new Date(NOW - 20 * 24 * HOUR), 100)).toBe(0);
        expect(await store.forgetGranules(before, 100)).toBe(1);
      });
    },
  );
}
