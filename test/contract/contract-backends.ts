/**
 * The backends the contract suites (store.test.ts, queue.test.ts) run on. A new backend is one
 * line in STORE_BACKENDS or QUEUE_BACKENDS: its name, which BACKENDS pairs include it, the
 * services it needs, and how to open a fresh, private one.
 *
 * Every open gives private data: a PostgreSQL database cloned from the migrated template, a
 * PGlite directory copied from its template, a Redis key prefix of its own (test-service.ts);
 * `dispose` closes it and deletes that data.
 */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { InboxQueue } from '../../src/queue/inbox/inbox-queue.js';
import type { Queue } from '../../src/queue/queue.js';
import { JetStreamQueue } from '../../src/queue/jetstream/jetstream-queue.js';
import { RedisClusterQueue } from '../../src/queue/redis-cluster/redis-cluster-queue.js';
import { RedisStreamsQueue } from '../../src/queue/redis-streams/redis-streams-queue.js';
import { openPgliteStore } from '../../src/store/pglite/pglite-store.js';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.js';
import type { DuplicatePolicy, Store } from '../../src/store/store.js';
import {
  needsNats,
  needsPostgres,
  needsRedis,
  requestedBackends,
  TEST_NATS_URL,
  TEST_REDIS_URL,
  type BackendName,
} from '../helpers/environment.js';
import {
  startPrivateRedisCluster,
  type PrivateRedisCluster,
} from '../helpers/private-redis-cluster.js';
import { createResources, deleteStream } from '../helpers/test-service.js';

type Service = 'postgres' | 'redis' | 'nats';

export interface OpenedStore {
  readonly store: Store;
  dispose(): Promise<void>;
}

export interface StoreBackend {
  readonly name: string;
  /** Whether a BACKENDS pair (e.g. postgres-redis) uses this store. */
  readonly inPair: (pair: BackendName) => boolean;
  readonly services: readonly Service[];
  open(options?: { duplicatePolicy?: DuplicatePolicy }): Promise<OpenedStore>;
}

/** The settings a queue suite chooses; the rest are fixed by the opener. */
export interface QueueTestOptions {
  readonly maxEvents: number;
  readonly batchMessages: number;
  /** How long a message read by a consumer stays its own before another may take it. */
  readonly claimIdleMs: number;
  /** Lets a test put a fault between the queue and the store (a crash around the commit). */
  readonly wrapStore?: (store: Store) => Store;
}

export interface OpenedQueue {
  readonly queue: Queue;
  /** The store the queue's consumers apply to (unwrapped). */
  readonly store: Store;
  dispose(): Promise<void>;
}

export interface QueueBackend {
  readonly name: string;
  readonly inPair: (pair: BackendName) => boolean;
  readonly services: readonly Service[];
  open(options: QueueTestOptions): Promise<OpenedQueue>;
}

export const STORE_BACKENDS: readonly StoreBackend[] = [
  { name: 'postgres', inPair: needsPostgres, services: ['postgres'], open: openPostgres },
  { name: 'pglite', inPair: (p) => !needsPostgres(p), services: [], open: openPglite },
];

export const QUEUE_BACKENDS: readonly QueueBackend[] = [
  { name: 'inbox', inPair: (p) => p.endsWith('inbox'), services: [], open: openInboxQueue },
  { name: 'redis-streams', inPair: needsRedis, services: ['redis'], open: openRedisStreamsQueue },
  { name: 'jetstream', inPair: needsNats, services: ['nats'], open: openJetStreamQueue },
  {
    name: 'redis-cluster',
    inPair: (p) => p === 'postgres-redis-cluster',
    services: [],
    open: openRedisClusterQueue,
  },
];

/**
 * The backends BACKENDS asks for (through any pair that uses them), each with the reason it is
 * skipped when a service it needs is unreachable (global-setup has already failed the run on
 * that if REQUIRE_SERVICES is set).
 */
export function contractBackends<
  B extends { inPair(p: BackendName): boolean; services: readonly Service[] },
>(all: readonly B[]): { backend: B; skip: string | undefined }[] {
  const pairs = requestedBackends();
  return all
    .filter((b) => pairs.some((p) => b.inPair(p)))
    .map((backend) => {
      const missing = backend.services.filter((s) =>
        s === 'postgres'
          ? !inject('postgresAvailable')
          : s === 'redis'
            ? !inject('redisAvailable')
            : !inject('natsAvailable'),
      );
      return {
        backend,
        skip: missing.length > 0 ? `${missing.join(' and ')} not reachable` : undefined,
      };
    });
}

async function openPostgres(
  options: { duplicatePolicy?: DuplicatePolicy } = {},
): Promise<OpenedStore> {
  const resources = await createResources('postgres-inbox');
  const store = await openPostgresStore({
    connectionString: resources.databaseUrl ?? '',
    poolSize: 4,
    ...options,
  });
  return {
    store,
    async dispose() {
      await store.close();
      await resources.dispose();
    },
  };
}

async function openPglite(
  options: { duplicatePolicy?: DuplicatePolicy } = {},
): Promise<OpenedStore> {
  const resources = await createResources('pglite-inbox');
  const store = await openPgliteStore(resources.env.DATA_DIR ?? '', options.duplicatePolicy);
  return {
    store,
    async dispose() {
      await store.close();
      await resources.dispose();
    },
  };
}

/** Fixed queue settings: short waits so idle loops in the tests turn quickly. */
const BLOCK_MS = 50;
const RETENTION_MS = 3600_000;

async function openInboxQueue(options: QueueTestOptions): Promise<OpenedQueue> {
  const opened = await openPglite();
  const store = opened.store;
  const queue = new InboxQueue(options.wrapStore?.(store) ?? store, {
    maxEvents: options.maxEvents,
    retryAfterSeconds: 1,
    batchMessages: options.batchMessages,
    blockMs: BLOCK_MS,
    receiptRetentionMs: RETENTION_MS,
  });
  return {
    queue,
    store,
    async dispose() {
      await queue.close();
      await opened.dispose();
    },
  };
}

async function openRedisStreamsQueue(options: QueueTestOptions): Promise<OpenedQueue> {
  // The store under the queue is PGlite: the pair pglite-redis, which needs no PostgreSQL.
  const resources = await createResources('pglite-redis');
  const store = await openPgliteStore(resources.env.DATA_DIR ?? '');
  const queue = new RedisStreamsQueue(options.wrapStore?.(store) ?? store, {
    url: TEST_REDIS_URL,
    keyPrefix: resources.redisKeyPrefix ?? '',
    maxEvents: options.maxEvents,
    retryAfterSeconds: 1,
    batchMessages: options.batchMessages,
    blockMs: BLOCK_MS,
    claimIdleMs: options.claimIdleMs,
    ledgerRetentionMs: RETENTION_MS,
  });
  try {
    await queue.ensureGroup();
  } catch (error) {
    await queue.close();
    await store.close();
    await resources.dispose();
    throw error;
  }
  return {
    queue,
    store,
    async dispose() {
      await queue.close();
      await store.close();
      await resources.dispose();
    },
  };
}

async function openJetStreamQueue(options: QueueTestOptions): Promise<OpenedQueue> {
  // The store under the queue is PGlite; the stream is this test's own.
  const resources = await createResources('pglite-inbox');
  const store = await openPgliteStore(resources.env.DATA_DIR ?? '');
  const stream = `test-${randomUUID()}`;
  let queue: JetStreamQueue;
  try {
    queue = await JetStreamQueue.open(options.wrapStore?.(store) ?? store, {
      url: TEST_NATS_URL,
      stream,
      replicas: 1,
      maxEvents: options.maxEvents,
      maxBytes: 0,
      maxDeliver: 20,
      retryAfterSeconds: 1,
      batchMessages: options.batchMessages,
      blockMs: BLOCK_MS,
      claimIdleMs: Math.max(options.claimIdleMs, 1000),
      ledgerRetentionMs: RETENTION_MS,
    });
  } catch (error) {
    await store.close();
    await resources.dispose();
    throw error;
  }
  return {
    queue,
    store,
    async dispose() {
      await queue.close();
      await deleteStream(stream);
      await store.close();
      await resources.dispose();
    },
  };
}

/** One private cluster for the whole file, started on first use; tests keep apart by key prefix. */
let sharedCluster: Promise<PrivateRedisCluster> | undefined;

async function openRedisClusterQueue(options: QueueTestOptions): Promise<OpenedQueue> {
  sharedCluster ??= startPrivateRedisCluster();
  const cluster = await sharedCluster;
  const resources = await createResources('pglite-inbox');
  const store = await openPgliteStore(resources.env.DATA_DIR ?? '');
  let queue: RedisClusterQueue;
  try {
    queue = await RedisClusterQueue.open(options.wrapStore?.(store) ?? store, {
      nodes: cluster.nodes,
      shards: 4,
      minReplicas: 1,
      replicaWaitMs: 1000,
      keyPrefix: `test-${randomUUID()}`,
      maxEvents: options.maxEvents,
      retryAfterSeconds: 1,
      batchMessages: options.batchMessages,
      blockMs: BLOCK_MS,
      claimIdleMs: options.claimIdleMs,
      ledgerRetentionMs: RETENTION_MS,
    });
  } catch (error) {
    await store.close();
    await resources.dispose();
    throw error;
  }
  return {
    queue,
    store,
    async dispose() {
      await queue.close();
      await store.close();
      await resources.dispose();
    },
  };
}
