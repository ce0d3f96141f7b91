/**
 * What the replaced system got wrong with Redis: a worker that dies after the database committed
 * but before it acknowledged, and a consumer that dies holding entries. Real PostgreSQL and Redis;
 * the dying worker is the real consumer code whose process "dies" right after the commit.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { RedisStreamsQueue } from '../../src/queue/redis-streams/redis-streams-queue.js';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.js';
import type { Store } from '../../src/store/store.js';
import { TEST_REDIS_URL } from '../helpers/environment.js';
import { publishAll, request, waitForDrain } from '../helpers/http.js';
import {
  createResources,
  startTestService,
  suiteBackends,
  type TestResources,
  type TestService,
} from '../helpers/test-service.js';

const [backend] = suiteBackends((b) => b === 'postgres-redis');
const skip = backend === undefined || backend.skip !== undefined;

describe.skipIf(skip)(
  `Redis redelivery${skip ? ' (SKIPPED: needs PostgreSQL and Redis)' : ''}`,
  () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    async function setup(): Promise<{ resources: TestResources; api: TestService }> {
      const resources = await createResources('postgres-redis');
      cleanups.push(() => resources.dispose());
      const api = await startTestService('postgres-redis', { WORKERS_ENABLED: 'false' }, resources);
      cleanups.push(() => api.stop());
      return { resources, api };
    }

    it('a worker killed between commit and ack: the entry is redelivered and counted once', async () => {
      const { resources, api } = await setup();
      const topic = `t-${randomUUID().slice(0, 8)}`;
      const w = makeWorkload({ total: 600, dupRate: 0.3, topics: [topic], idPrefix: topic });
      await publishAll(api.url, w.events, { batch: 50, concurrency: 4 });

      // The doomed worker: its store commits, then the process "dies" before XACK.
      const store = await openPostgresStore({
        connectionString: resources.databaseUrl ?? '',
        poolSize: 2,
      });
      cleanups.push(() => store.close());
      let committed = 0;
      const dying: Store = Object.create(store, {
        applyBatches: {
          value: async (...args: Parameters<Store['applyBatches']>) => {
            const result = await store.applyBatches(...args);
            committed += result.messages;
            throw new Error('process killed after commit');
          },
        },
      }) as Store;
      const queue = new RedisStreamsQueue(dying, {
        url: TEST_REDIS_URL,
        keyPrefix: resources.redisKeyPrefix ?? '',
        maxEvents: 1_000_000,
        retryAfterSeconds: 1,
        batchMessages: 5,
        blockMs: 100,
        claimIdleMs: 60_000,
        ledgerRetentionMs: 3600_000,
      });
      const doomed = queue.createConsumer('doomed-worker');
      await expect(doomed.processNext(new AbortController().signal)).rejects.toThrow('killed');
      await queue.close();
      expect(committed).toBe(5);

      // The store has those 5 messages; the queue still holds all 12, 5 of them pending.
      const partial = await request<{ received: number }>(`${api.url}/stats`);
      expect(partial.body.received).toBe(250);
      const q = await request<{ queue_size: number }>(`${api.url}/queue/stats`);
      expect(q.body.queue_size).toBe(600);

      const workers = await startTestService(
        'postgres-redis',
        { ROLE: 'worker', CLAIM_IDLE_MS: '300' },
        resources,
      );
      cleanups.push(() => workers.stop());
      const s = await waitForDrain(api.url, 600);
      expect(s).toMatchObject({
        received: 600,
        unique_processed: w.unique,
        duplicate_dropped: w.duplicates,
      });
      expect(await workers.service.store.countEvents()).toBe(w.unique);
    });

    it('a consumer killed holding pending entries: another takes them over', async () => {
      const { resources, api } = await setup();
      const topic = `t-${randomUUID().slice(0, 8)}`;
      const w = makeWorkload({ total: 500, dupRate: 0.2, topics: [topic], idPrefix: topic });
      await publishAll(api.url, w.events, { batch: 25, concurrency: 4 });

      const redis = new Redis(TEST_REDIS_URL, { protocol: 2 });
      const stream = `${resources.redisKeyPrefix}:stream`;
      const taken = (await redis.call(
        'XREADGROUP',
        'GROUP',
        'workers',
        'dead-consumer',
        'COUNT',
        '8',
        'STREAMS',
        stream,
        '>',
      )) as [string, unknown[]][];
      expect(taken[0]?.[1]).toHaveLength(8);
      // The dead consumer never acknowledges. Live workers must take its entries over.
      const workers = await startTestService(
        'postgres-redis',
        { ROLE: 'worker', CLAIM_IDLE_MS: '300' },
        resources,
      );
      cleanups.push(() => workers.stop());
      const s = await waitForDrain(api.url, 500);
      expect(s).toMatchObject({
        received: 500,
        unique_processed: w.unique,
        duplicate_dropped: w.duplicates,
      });
      const pending = (await redis.call('XPENDING', stream, 'workers')) as [number];
      expect(pending[0]).toBe(0);
      expect(await redis.xlen(stream)).toBe(0);
      redis.disconnect();
    });

    it('a Redis that lost its data (no persistence, restarted) gets its group back', async () => {
      const { resources, api } = await setup();
      const workers = await startTestService('postgres-redis', { ROLE: 'worker' }, resources);
      cleanups.push(() => workers.stop());
      const redis = new Redis(TEST_REDIS_URL);
      await redis.del(`${resources.redisKeyPrefix}:stream`, `${resources.redisKeyPrefix}:depth`);
      redis.disconnect();
      const topic = `t-${randomUUID().slice(0, 8)}`;
      const w = makeWorkload({ total: 100, dupRate: 0, topics: [topic], idPrefix: topic });
      await publishAll(api.url, w.events, { batch: 10, concurrency: 2 });
      const s = await waitForDrain(api.url, 100, 20_000);
      expect(s.unique_processed).toBe(100);
    });

    it('maintenance prunes the ledger rows of settled messages', async () => {
      const { resources, api } = await setup();
      const topic = `t-${randomUUID().slice(0, 8)}`;
      const w = makeWorkload({ total: 100, dupRate: 0, topics: [topic], idPrefix: topic });
      await publishAll(api.url, w.events, { batch: 10, concurrency: 2 });
      const workers = await startTestService(
        'postgres-redis',
        { ROLE: 'worker', LEDGER_RETENTION_MS: '1000' },
        resources,
      );
      cleanups.push(() => workers.stop());
      await waitForDrain(api.url, 100);
      await new Promise((r) => setTimeout(r, 1100));
      await workers.service.queue.maintain();
      const pgStore = await openPostgresStore({
        connectionString: resources.databaseUrl ?? '',
        poolSize: 1,
      });
      cleanups.push(() => pgStore.close());
      expect(await pgStore.pruneLedger(new Date())).toBe(0);
    });
  },
);
