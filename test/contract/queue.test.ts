/**
 * The Queue contract, through its interface only, on every queue backend (contract-backends.ts):
 * enqueue, depth and the bound, read and acknowledge through a consumer, the batch size, a
 * consumer that dies around the commit (its messages are applied by another, counted once),
 * poison messages, and consumers in parallel. Each test opens a fresh queue and store of its own.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { AcceptedBatch } from '../../src/log-event.js';
import {
  addResults,
  EMPTY_RESULT,
  type ConsumeResult,
  type QueueConsumer,
} from '../../src/queue/queue.js';
import type { ApplyResult, Store } from '../../src/store/store.js';
import {
  contractBackends,
  QUEUE_BACKENDS,
  type OpenedQueue,
  type QueueTestOptions,
} from './contract-backends.js';

const NOW = new Date().toISOString();

function batch(topic: string, ids: string[], timestamp = NOW): AcceptedBatch {
  const events = ids.map((id) => ({
    topic,
    event_id: id,
    timestamp,
    source: 'svc',
    payload: { n: id },
  }));
  return { body: JSON.stringify({ events }), eventCount: events.length };
}

/** Where a fault sits relative to the store's commit of a consumer's batch. */
type Crash = 'none' | 'before-commit' | 'after-commit';

/**
 * A store whose applies (the queue's writes: applyBatches, the inbox's applyNext/applyOne) can be
 * made to fail as a dying worker's would: before the transaction runs, or after it committed
 * (the process died before it could acknowledge).
 */
function crashingStore(store: Store, crash: { at: Crash }): Store {
  const wrap =
    <A extends unknown[]>(apply: (...args: A) => Promise<ApplyResult>) =>
    async (...args: A): Promise<ApplyResult> => {
      if (crash.at === 'before-commit') throw new Error('worker died before the commit');
      const result = await apply(...args);
      if (crash.at === 'after-commit') throw new Error('worker died after the commit');
      return result;
    };
  const inbox = {
    ...bindAll(store.inbox),
    applyNext: wrap(store.inbox.applyNext.bind(store.inbox)),
    applyOne: wrap(store.inbox.applyOne.bind(store.inbox)),
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'applyBatches') return wrap(target.applyBatches.bind(target));
      if (prop === 'inbox') return inbox;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

function bindAll<T extends object>(o: T): T {
  const bound: Record<string, unknown> = {};
  for (const key of Object.getOwnPropertyNames(Object.getPrototypeOf(o))) {
    const value = (o as Record<string, unknown>)[key];
    if (typeof value === 'function' && key !== 'constructor') bound[key] = value.bind(o);
  }
  return bound as T;
}

/** Loop bound for waiting loops: each idle turn waits at most the queue's short block time. */
const MAX_TURNS = 400;

for (const { backend, skip } of contractBackends(QUEUE_BACKENDS)) {
  describe.skipIf(skip !== undefined)(
    `Queue contract on ${backend.name}${skip ? ` (SKIPPED: ${skip})` : ''}`,
    () => {
      const opened: OpenedQueue[] = [];
      const consumers: QueueConsumer[] = [];
      afterEach(async () => {
        for (const c of consumers.splice(0)) await c.close();
        for (const o of opened.splice(0)) await o.dispose();
      });
      const open = async (options: Partial<QueueTestOptions> = {}): Promise<OpenedQueue> => {
        const o = await backend.open({
          maxEvents: 10_000,
          batchMessages: 10,
          claimIdleMs: 300,
          ...options,
        });
        opened.push(o);
        return o;
      };
      const consumer = (o: OpenedQueue, name = `c-${randomUUID().slice(0, 8)}`) => {
        const c = o.queue.createConsumer(name);
        consumers.push(c);
        return c;
      };
      const never = new AbortController().signal;
      /** Runs `c` until it has handled `messages` messages (applied or parked). */
      const drain = async (c: QueueConsumer, messages: number): Promise<ConsumeResult> => {
        let total = EMPTY_RESULT;
        for (let turn = 0; turn < MAX_TURNS; turn++) {
          if (total.messages + total.deadLettered >= messages) return total;
          total = addResults(total, await c.processNext(never));
        }
        throw new Error(`consumer handled ${total.messages + total.deadLettered} of ${messages}`);
      };
      const topicName = () => `test-${randomUUID()}`;

      it('enqueue makes a message durable and counted in the depth until a consumer applies it', async () => {
        const o = await open();
        const t = topicName();
        expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
        const id = await o.queue.enqueue(batch(t, ['1', '2', '3']));
        expect(typeof id).toBe('string');
        expect(await o.queue.depth()).toEqual({ messages: 1, events: 3 });
        expect(await o.queue.isQueued(id)).toBe(true);
        expect(await o.queue.isQueued('no-such-message')).toBe(false);

        const result = await drain(consumer(o), 1);
        expect(result).toEqual({
          messages: 1,
          received: 3,
          inserted: 3,
          duplicates: 0,
          conflicts: 0,
          rejected: 0,
          deadLettered: 0,
        });
        expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
        expect(await o.queue.isQueued(id)).toBe(false);
        expect(await o.store.receipt(o.queue.receiptKey(id))).toHaveLength(3);
        expect(await o.store.countEvents(t)).toBe(3);
        await expect(o.queue.ping()).resolves.toBeUndefined();
      });

      it('a consumer takes at most its batch size at a time, oldest first, and nothing twice', async () => {
        const o = await open({ batchMessages: 2 });
        const t = topicName();
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push(await o.queue.enqueue(batch(t, [`${i}`, `${i + 1}`])));
        const c = consumer(o);
        const first = await c.processNext(never);
        expect(first.messages).toBeGreaterThan(0);
        expect(first.messages).toBeLessThanOrEqual(2);
        expect(await o.queue.isQueued(ids[0] ?? '')).toBe(false);
        expect(await o.queue.isQueued(ids[4] ?? '')).toBe(true);
        const rest = await drain(c, 5 - first.messages);
        const total = addResults(first, rest);
        expect(total).toMatchObject({ messages: 5, received: 10, inserted: 6, duplicates: 4 });
        expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
        expect(await o.store.counters()).toMatchObject({
          received: 10,
          uniqueProcessed: 6,
          duplicateDropped: 4,
        });
      });

      it('past its bound the queue refuses with AGG_ERR_QUEUE_FULL and keeps what it holds', async () => {
        const o = await open({ maxEvents: 5 });
        const t = topicName();
        await o.queue.enqueue(batch(t, ['1', '2', '3']));
        expect(await o.queue.depth()).toEqual({ messages: 1, events: 3 });
        await expect(o.queue.enqueue(batch(t, ['4', '5', '6']))).rejects.toMatchObject({
          code: 'AGG_ERR_QUEUE_FULL',
          statusCode: 503,
          retryAfterSeconds: 1,
        });
        expect(await o.queue.depth()).toEqual({ messages: 1, events: 3 });
        await drain(consumer(o), 1);
        expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
        await o.queue.enqueue(batch(t, ['4', '5', '6']));
        expect(await o.queue.depth()).toEqual({ messages: 1, events: 3 });
      });

      for (const at of ['before-commit', 'after-commit'] as const) {
        it(`a consumer that dies ${at.replace('-', ' the ')} leaves its messages to another, counted once`, async () => {
          const crash: { at: Crash } = { at: 'none' };
          const o = await open({ wrapStore: (store) => crashingStore(store, crash) });
          const t = topicName();
          const ids = [
            await o.queue.enqueue(batch(t, ['1', '2'])),
            await o.queue.enqueue(batch(t, ['2', '3'])),
          ];
          crash.at = at;
          const dying = consumer(o, 'dying');
          await expect(dying.processNext(never)).rejects.toThrow(/worker died/);
          await dying.close();
          crash.at = 'none';

          const survivor = consumer(o, 'survivor');
          // The survivor ends once the queue is empty: after a crash past the commit, the messages
          // may be settled already (inbox) or come back to be acknowledged without a second count.
          for (let turn = 0; turn < MAX_TURNS; turn++) {
            const depth = await o.queue.depth();
            if (depth.messages === 0) break;
            await survivor.processNext(never);
          }
          expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
          for (const id of ids) {
            expect(await o.queue.isQueued(id)).toBe(false);
            expect(await o.store.receipt(o.queue.receiptKey(id))).toHaveLength(2);
          }
          expect(await o.store.counters()).toMatchObject({
            received: 4,
            uniqueProcessed: 3,
            duplicateDropped: 1,
          });
          expect(await o.store.countEvents(t)).toBe(3);
        });
      }

      it('a poison message is parked with its reason; the messages around it are stored', async () => {
        const o = await open();
        const t = topicName();
        const before = await o.queue.enqueue(batch(t, ['1']));
        const poison = await o.queue.enqueue(batch(t, ['p1', 'p2'], 'not a date'));
        const after = await o.queue.enqueue(batch(t, ['2']));
        const result = await drain(consumer(o), 3);
        expect(result).toMatchObject({ messages: 2, received: 2, inserted: 2, deadLettered: 1 });
        expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
        const letters = await o.store.listDeadLetters({ limit: 10, offset: 0 });
        expect(letters).toHaveLength(1);
        expect(letters[0]).toMatchObject({
          messageId: o.queue.receiptKey(poison),
          eventCount: 2,
        });
        expect(letters[0]?.reason).toMatch(/not a date/);
        expect(letters[0]?.body).toMatch(/"event_id": ?"p1"/);
        for (const id of [before, after]) {
          expect(await o.store.receipt(o.queue.receiptKey(id))).toHaveLength(1);
        }
        expect(await o.store.counters()).toMatchObject({ received: 2, uniqueProcessed: 2 });
        const stored = await o.store.listEvents({ topic: t, limit: 10, offset: 0 });
        expect(stored.map((e) => e.event_id).sort()).toEqual(['1', '2']);
      });

      it('consumers in parallel apply every message once', async () => {
        const o = await open({ batchMessages: 3 });
        const t = topicName();
        const n = 20;
        for (let i = 0; i < n; i++) await o.queue.enqueue(batch(t, [`${i}`, `${i + 1}`]));
        const [a, b] = [consumer(o), consumer(o)];
        let handled = 0;
        const run = async (c: QueueConsumer): Promise<ConsumeResult> => {
          let total = EMPTY_RESULT;
          for (let turn = 0; turn < MAX_TURNS && handled < n; turn++) {
            const r = await c.processNext(never);
            handled += r.messages;
            total = addResults(total, r);
          }
          return total;
        };
        const [ra, rb] = await Promise.all([run(a), run(b)]);
        const total = addResults(ra, rb);
        expect(total).toMatchObject({ messages: n, received: 2 * n, inserted: n + 1 });
        expect(await o.queue.depth()).toEqual({ messages: 0, events: 0 });
        expect(await o.store.counters()).toMatchObject({
          received: 2 * n,
          uniqueProcessed: n + 1,
          duplicateDropped: n - 1,
        });
      });

      it('maintain keeps receipts of recent messages', async () => {
        const o = await open();
        const t = topicName();
        const id = await o.queue.enqueue(batch(t, ['1']));
        await drain(consumer(o), 1);
        await o.queue.maintain();
        expect(await o.store.receipt(o.queue.receiptKey(id))).toHaveLength(1);
        expect((await o.queue.durability()).mode).toEqual(expect.any(String));
      });
    },
  );
}
