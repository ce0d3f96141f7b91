/**
 * The Store contract, through its interface only, on every store backend (contract-backends.ts):
 * applying queue batches (dedupe, ledger, counters), the atomic apply, conflicts and the
 * duplicate policy, refused data, receipts, dead letters, retention, the inbox, event reads.
 * Each test opens a fresh store of its own, so every expected figure is exact.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConflictRejectedError, StoreRejectedError } from '../../src/errors.js';
import type { AcceptedBatch } from '../../src/log-event.js';
import type { DuplicatePolicy, QueuedBatch, Store } from '../../src/store/store.js';
import { contractBackends, STORE_BACKENDS, type OpenedStore } from './contract-backends.js';

interface TestEvent {
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
  payload: Record<string, unknown>;
}

const NOW = new Date().toISOString();

function ev(topic: string, id: string, extra: Partial<TestEvent> = {}): TestEvent {
  return { topic, event_id: id, timestamp: NOW, source: 'svc', payload: { n: id }, ...extra };
}

function message(events: TestEvent[], id = `m-${randomUUID()}`): QueuedBatch {
  return { id, body: JSON.stringify({ events }) };
}

function accepted(events: TestEvent[]): AcceptedBatch {
  return { body: JSON.stringify({ events }), eventCount: events.length };
}

const NOTHING = {
  messages: 0,
  received: 0,
  inserted: 0,
  duplicates: 0,
  conflicts: 0,
  rejected: 0,
};

for (const { backend, skip } of contractBackends(STORE_BACKENDS)) {
  describe.skipIf(skip !== undefined)(
    `Store contract on ${backend.name}${skip ? ` (SKIPPED: ${skip})` : ''}`,
    () => {
      const opened: OpenedStore[] = [];
      afterEach(async () => {
        for (const o of opened.splice(0)) await o.dispose();
      });
      const open = async (duplicatePolicy?: DuplicatePolicy): Promise<Store> => {
        const o = await backend.open(duplicatePolicy ? { duplicatePolicy } : {});
        opened.push(o);
        return o.store;
      };
      const topicName = () => `test-${randomUUID()}`;

      /** Every counting equation of verify() holds. */
      const expectConsistent = async (store: Store) => {
        for (const check of await store.verify()) {
          expect(check, check.name).toMatchObject({ difference: 0 });
        }
      };

      it('applyBatches stores each key once and counts what happened, in and across messages', async () => {
        const store = await open();
        const t = topicName();
        const result = await store.applyBatches(
          [message([ev(t, 'a1'), ev(t, 'a2'), ev(t, 'a1')]), message([ev(t, 'a2'), ev(t, 'a3')])],
          0,
        );
        expect(result).toEqual({
          messages: 2,
          received: 5,
          inserted: 3,
          duplicates: 2,
          conflicts: 0,
          rejected: 0,
        });
        expect(await store.counters()).toEqual({
          received: 5,
          uniqueProcessed: 3,
          duplicateDropped: 2,
          conflictingDuplicates: 0,
          rejected: 0,
          expired: 0,
          keysExpired: 0,
          topics: [t],
        });
        expect(await store.countEvents(t)).toBe(3);
        const listed = await store.listEvents({ topic: t, order: 'asc', limit: 10, offset: 0 });
        expect(listed.map((e) => e.event_id).sort()).toEqual(['a1', 'a2', 'a3']);
        expect(listed[0]).toMatchObject({ topic: t, source: 'svc' });
        expect(JSON.parse(listed[0]?.payloadJson ?? '')).toEqual({ n: 'a1' });
        await expectConsistent(store);
      });

      it('applyBatches with nothing to apply changes nothing', async () => {
        const store = await open();
        expect(await store.applyBatches([], 0)).toEqual(NOTHING);
        expect((await store.counters()).received).toBe(0);
      });

      it('a message already in the ledger is skipped, even twice in one call', async () => {
        const store = await open();
        const t = topicName();
        const m = message([ev(t, 'x1'), ev(t, 'x2')]);
        expect(await store.applyBatches([m, m], 3)).toMatchObject({
          messages: 1,
          received: 2,
          inserted: 2,
        });
        // A redelivery, on another worker's shard.
        expect(await store.applyBatches([m], 9)).toEqual(NOTHING);
        expect(await store.counters()).toMatchObject({
          received: 2,
          uniqueProcessed: 2,
          duplicateDropped: 0,
        });
        await expectConsistent(store);
      });

      it('counters sum every shard; topic summaries split them by topic', async () => {
        const store = await open();
        const [t1, t2] = [topicName(), topicName()].sort() as [string, string];
        await store.applyBatches([message([ev(t1, '1'), ev(t1, '2')])], 0);
        await store.applyBatches([message([ev(t1, '2'), ev(t2, '1')])], 5);
        await store.applyAccepted(accepted([ev(t2, '1'), ev(t2, '2')]), 70);
        expect(await store.counters()).toMatchObject({
          received: 6,
          uniqueProcessed: 4,
          duplicateDropped: 2,
          topics: [t1, t2],
        });
        const summaries = await store.topicSummaries();
        expect(summaries).toEqual([
          expect.objectContaining({
            topic: t1,
            received: 3,
            uniqueProcessed: 2,
            duplicateDropped: 1,
          }),
          expect.objectContaining({
            topic: t2,
            received: 3,
            uniqueProcessed: 2,
            duplicateDropped: 1,
          }),
        ]);
        expect(summaries[0]?.lastEventAt).toBe(NOW.replace(/\.(\d{3})Z$/, '.$1000Z'));
        await expectConsistent(store);
      });

      it('a duplicate that differs from the stored copy is a conflict, kept for inspection', async () => {
        const store = await open();
        const t = topicName();
        await store.applyBatches([message([ev(t, 'c1', { payload: { v: 1 } })])], 0);
        const result = await store.applyBatches(
          [message([ev(t, 'c1', { payload: { v: 2 } }), ev(t, 'c2')])],
          0,
        );
        expect(result).toEqual({
          messages: 1,
          received: 2,
          inserted: 1,
          duplicates: 1,
          conflicts: 1,
          rejected: 0,
        });
        const conflicts = await store.listConflicts({ topic: t, limit: 10 });
        expect(conflicts).toHaveLength(1);
        expect(conflicts[0]).toMatchObject({
          topic: t,
          eventId: 'c1',
          rejected: false,
          differs: ['payload'],
          stored: { source: 'svc', payloadStart: '{"v": 1}' },
          duplicate: { source: 'svc', payloadStart: '{"v": 2}' },
        });
        // The stored copy is the first one.
        const stored = await store.listEvents({ topic: t, limit: 10, offset: 0 });
        expect(stored.find((e) => e.event_id === 'c1')?.payloadJson).toBe('{"v": 1}');
        expect(await store.counters()).toMatchObject({ conflictingDuplicates: 1 });
        await expectConsistent(store);
      });

      it('applyAccepted stores a batch at once and, asked for detail, says what became of each event', async () => {
        const store = await open();
        const t = topicName();
        const batch = accepted([ev(t, 'b1'), ev(t, 'b2'), ev(t, 'b1')]);
        const first = await store.applyAccepted(batch, 64, { detail: true });
        expect(first).toMatchObject({ messages: 1, received: 3, inserted: 2, duplicates: 1 });
        expect(first.outcomes?.map((o) => [o.index, o.outcome, o.conflict])).toEqual([
          [0, 'stored', false],
          [1, 'stored', false],
          [2, 'duplicate', false],
        ]);
        expect(first.outcomes?.[0]?.originalProcessedAt).toBeUndefined();
        expect(first.outcomes?.[2]?.originalProcessedAt).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);

        const again = await store.applyAccepted(batch, 65, { detail: true });
        expect(again).toMatchObject({ received: 3, inserted: 0, duplicates: 3 });
        expect(again.outcomes?.map((o) => o.outcome)).toEqual([
          'duplicate',
          'duplicate',
          'duplicate',
        ]);
        // Without detail there are no outcomes, the counts are the same kind.
        const plain = await store.applyAccepted(accepted([ev(t, 'b3')]), 66);
        expect(plain).toMatchObject({ received: 1, inserted: 1, duplicates: 0 });
        expect(plain.outcomes).toBeUndefined();
        expect(await store.countEvents(t)).toBe(3);
        await expectConsistent(store);
      });

      it('concurrent atomic applies each learn what became of their own events; a refused one fails alone', async () => {
        const store = await open();
        const t = topicName();
        const requests = Array.from({ length: 12 }, (_, i) =>
          accepted([ev(t, `g${i}`), ev(t, 'shared', { payload: { n: 'shared' } })]),
        );
        const bad = accepted([ev(t, 'never'), ev(t, 'bad', { timestamp: 'not a date' })]);
        const answers = await Promise.allSettled([
          ...requests.map((r, i) => store.applyAccepted(r, 64 + i, { detail: true })),
          store.applyAccepted(bad, 80, { detail: true }),
        ]);
        const refused = answers.pop();
        expect(refused).toMatchObject({
          status: 'rejected',
          reason: { code: 'AGG_ERR_STORE_REJECTED' },
        });
        const results = answers.map((a) => {
          if (a.status !== 'fulfilled') throw new Error(String(a.reason));
          return a.value;
        });
        for (const r of results) {
          expect(r).toMatchObject({ messages: 1, received: 2 });
          expect(r.outcomes?.map((o) => o.index)).toEqual([0, 1]);
          expect(r.outcomes?.[0]?.outcome).toBe('stored');
        }
        // The shared key is stored by exactly one request; every other copy is its duplicate.
        const shared = results.map((r) => r.outcomes?.[1]?.outcome);
        expect(shared.filter((o) => o === 'stored')).toHaveLength(1);
        expect(shared.filter((o) => o === 'duplicate')).toHaveLength(11);
        expect(await store.countEvents(t)).toBe(13);
        expect(await store.counters()).toMatchObject({
          received: 24,
          uniqueProcessed: 13,
          duplicateDropped: 11,
        });
        await expectConsistent(store);
      });

      it('reject-conflicts: an atomic batch with a conflict is rolled back whole; a queued one parks only the conflict', async () => {
        const store = await open('reject-conflicts');
        const t = topicName();
        await store.applyAccepted(accepted([ev(t, 'r1', { payload: { v: 1 } })]), 64);
        const refused = store.applyAccepted(
          accepted([ev(t, 'r2'), ev(t, 'r1', { payload: { v: 2 } })]),
          64,
        );
        await expect(refused).rejects.toBeInstanceOf(ConflictRejectedError);
        await expect(refused).rejects.toMatchObject({ code: 'AGG_ERR_CONFLICT' });
        expect(await store.countEvents(t)).toBe(1);
        expect(await store.counters()).toMatchObject({ received: 1, rejected: 0 });

        const queued = await store.applyBatches(
          [message([ev(t, 'r3'), ev(t, 'r1', { source: 'other', payload: { v: 1 } })])],
          0,
        );
        expect(queued).toEqual({
          messages: 1,
          received: 2,
          inserted: 1,
          duplicates: 0,
          conflicts: 1,
          rejected: 1,
        });
        const [conflict] = await store.listConflicts({ topic: t, limit: 10 });
        expect(conflict).toMatchObject({ eventId: 'r1', rejected: true, differs: ['source'] });
        expect(await store.counters()).toMatchObject({
          received: 3,
          uniqueProcessed: 2,
          duplicateDropped: 0,
          rejected: 1,
        });
        await expectConsistent(store);
      });

      it('data the database refuses is a StoreRejectedError and nothing of its batch is kept', async () => {
        const store = await open();
        const t = topicName();
        const bad = [ev(t, 'ok'), ev(t, 'bad', { timestamp: 'not a date' })];
        await expect(store.applyBatches([message(bad)], 0)).rejects.toBeInstanceOf(
          StoreRejectedError,
        );
        await expect(store.applyAccepted(accepted(bad), 64)).rejects.toMatchObject({
          code: 'AGG_ERR_STORE_REJECTED',
        });
        expect(await store.countEvents(t)).toBe(0);
        expect((await store.counters()).received).toBe(0);
        // The refused message left no ledger row: once fixed, the same id applies.
        const fixed = message([ev(t, 'ok')], 'm-refused-then-fixed');
        expect(await store.applyBatches([fixed], 0)).toMatchObject({ messages: 1, inserted: 1 });
      });

      it('a receipt says what became of each event of an applied message, until the ledger is pruned', async () => {
        const store = await open();
        const t = topicName();
        await store.applyBatches([message([ev(t, 'k1', { payload: { v: 1 } })])], 0);
        const m = message([ev(t, 'k2'), ev(t, 'k1', { payload: { v: 2 } }), ev(t, 'k2')]);
        await store.applyBatches([m], 0);
        expect(await store.receipt(m.id)).toEqual([
          { index: 0, outcome: 'stored', conflict: false, originalProcessedAt: undefined },
          { index: 1, outcome: 'duplicate', conflict: true, originalProcessedAt: undefined },
          { index: 2, outcome: 'duplicate', conflict: false, originalProcessedAt: undefined },
        ]);
        expect(await store.receipt(`never-${randomUUID()}`)).toBeUndefined();
        expect(await store.pruneLedger(new Date(Date.now() - 3600_000))).toBe(0);
        expect(await store.receipt(m.id)).toHaveLength(3);
        expect(await store.pruneLedger(new Date(Date.now() + 3600_000))).toBe(2);
        expect(await store.receipt(m.id)).toBeUndefined();
      });

      it('dead letters are parked once, counted, listed newest first and discarded on request', async () => {
        const store = await open();
        const first = {
          messageId: `dl-${randomUUID()}`,
          body: '{"events":[1,2]}',
          reason: 'r1',
          eventCount: 2,
        };
        const second = {
          messageId: `dl-${randomUUID()}`,
          body: '{"events":[3]}',
          reason: 'r2',
          eventCount: 1,
        };
        await store.deadLetter(first);
        await store.deadLetter(second);
        await store.deadLetter({ ...first, reason: 'parked again' });
        expect(await store.deadLetterCount()).toBe(2);
        expect(await store.deadLetteredEvents()).toBe(3);
        const listed = await store.listDeadLetters({ limit: 10, offset: 0 });
        expect(listed.map((l) => l.messageId)).toEqual([second.messageId, first.messageId]);
        expect(listed.find((l) => l.messageId === first.messageId)).toMatchObject({
          body: first.body,
          reason: 'r1',
          eventCount: 2,
        });
        expect(listed[1]?.failedAt).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
        expect(await store.listDeadLetters({ limit: 1, offset: 1 })).toHaveLength(1);
        expect(await store.deleteDeadLetter(first.messageId)).toBe(true);
        expect(await store.deleteDeadLetter(first.messageId)).toBe(false);
        expect(await store.deadLetterCount()).toBe(1);
        expect(await store.deadLetteredEvents()).toBe(1);
      });

      it('retention removes old payloads first, keys later, and counts both', async () => {
        const store = await open();
        const t = topicName();
        const old = (id: string) => ev(t, id, { timestamp: '2000-01-0' + id + 'T00:00:00Z' });
        await store.applyBatches([message([old('1'), old('2'), old('3'), ev(t, 'new')])], 0);
        const cutoff = new Date('2001-01-01T00:00:00Z');
        expect(await store.expireEvents(t, cutoff, 2)).toBe(2);
        expect(await store.expireEvents(t, cutoff, 10)).toBe(1);
        expect(await store.expireEvents(t, cutoff, 10)).toBe(0);
        expect(await store.countEvents(t)).toBe(1);
        const listed = await store.listEvents({ topic: t, limit: 10, offset: 0 });
        expect(listed.map((e) => e.event_id)).toEqual(['new']);
        // An expired key is still remembered: a late copy is a duplicate.
        expect(await store.applyBatches([message([old('1')])], 0)).toMatchObject({
          inserted: 0,
          duplicates: 1,
        });
        expect(await store.counters()).toMatchObject({ expired: 3, keysExpired: 0 });
        await expectConsistent(store);

        expect(await store.forgetKeys(cutoff, 10)).toBe(3);
        expect(await store.forgetKeys(cutoff, 10)).toBe(0);
        expect(await store.counters()).toMatchObject({
          received: 5,
          uniqueProcessed: 4,
          duplicateDropped: 1,
          expired: 3,
          keysExpired: 3,
        });
        await expectConsistent(store);
        // A forgotten key is new again.
        expect(await store.applyBatches([message([old('1')])], 0)).toMatchObject({ inserted: 1 });
        await expectConsistent(store);
      });

      it('the inbox keeps messages in order and applies each exactly once', async () => {
        const store = await open();
        const t = topicName();
        const ids = await store.inbox.append([
          accepted([ev(t, 'i1'), ev(t, 'i2')]),
          accepted([ev(t, 'i2')]),
          accepted([ev(t, 'i3')]),
        ]);
        expect(ids).toHaveLength(3);
        expect(ids.map(BigInt)).toEqual([...ids.map(BigInt)].sort((a, b) => (a < b ? -1 : 1)));
        expect(await store.inbox.append([])).toEqual([]);
        expect(await store.inbox.depth()).toEqual({ messages: 3, events: 4 });
        expect(await store.inbox.peekIds(2)).toEqual(ids.slice(0, 2));
        expect(await store.inbox.contains(ids[0] ?? '')).toBe(true);

        expect(await store.inbox.applyOne(ids[2] ?? '', 0)).toMatchObject({
          messages: 1,
          inserted: 1,
        });
        expect(await store.inbox.applyOne(ids[2] ?? '', 0)).toEqual(NOTHING);
        expect(await store.inbox.applyNext(10, 0)).toEqual({
          messages: 2,
          received: 3,
          inserted: 2,
          duplicates: 1,
          conflicts: 0,
          rejected: 0,
        });
        expect(await store.inbox.applyNext(10, 0)).toEqual(NOTHING);
        expect(await store.inbox.depth()).toEqual({ messages: 0, events: 0 });
        expect(await store.inbox.contains(ids[0] ?? '')).toBe(false);
        expect(await store.receipt(`inbox-${ids[1]}`)).toEqual([
          { index: 0, outcome: 'duplicate', conflict: false, originalProcessedAt: undefined },
        ]);
        expect(await store.counters()).toMatchObject({ received: 4, uniqueProcessed: 3 });
      });

      it('the inbox parks a message with its reason and its events count', async () => {
        const store = await open();
        const t = topicName();
        const [id] = await store.inbox.append([accepted([ev(t, 'p1'), ev(t, 'p2')])]);
        await store.inbox.deadLetter(id ?? '', 'refused for a reason');
        expect(await store.inbox.depth()).toEqual({ messages: 0, events: 0 });
        const [letter] = await store.listDeadLetters({ limit: 10, offset: 0 });
        expect(letter).toMatchObject({
          messageId: `inbox-${id}`,
          reason: 'refused for a reason',
          eventCount: 2,
        });
        expect(JSON.parse(letter?.body ?? '[]')).toEqual([ev(t, 'p1'), ev(t, 'p2')]);
        expect((await store.counters()).received).toBe(0);
      });

      it('event reads: by id range, after an id (by topic), the last id, and insert announcements', async () => {
        const store = await open();
        const [t1, t2] = [topicName(), topicName()];
        expect(await store.lastEventId()).toBe(0);
        const ranges: [number, number][] = [];
        let announced!: () => void;
        const seen = new Promise<void>((resolve) => (announced = resolve));
        const stop = await store.watchInserts({
          onRange: (from, to) => {
            ranges.push([from, to]);
            announced();
          },
          onResumed: () => undefined,
        });
        try {
          await store.applyBatches([message([ev(t1, '1'), ev(t2, '1'), ev(t1, '2')])], 0);
          await seen;
        } finally {
          await stop();
        }
        const last = await store.lastEventId();
        const all = await store.eventsAfterId(0, undefined, 10);
        expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
        expect(all).toHaveLength(3);
        expect(all.at(-1)?.id).toBe(last);
        const [from, to] = ranges[0] ?? [0, 0];
        for (const e of all) {
          expect(e.id).toBeGreaterThanOrEqual(from);
          expect(e.id).toBeLessThanOrEqual(to);
        }
        expect(await store.eventsInIdRange(from, to)).toEqual(all);
        const ofT1 = await store.eventsAfterId(0, [t1], 10);
        expect(ofT1.map((e) => [e.topic, e.event_id])).toEqual([
          [t1, '1'],
          [t1, '2'],
        ]);
        expect(await store.eventsAfterId(ofT1[0]?.id ?? 0, [t1], 10)).toHaveLength(1);
        expect(await store.eventsAfterId(0, undefined, 2)).toHaveLength(2);
        expect(await store.countEvents()).toBe(3);
        await expect(store.ping()).resolves.toBeUndefined();
      });
    },
  );
}
