/**
 * Chooses the Queue backend from the configuration: a JetStream stream if NATS_URL is set,
 * sharded Redis Streams on a cluster if REDIS_CLUSTER_NODES is set, Redis Streams if REDIS_URL is
 * set, else the inbox.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Store } from '../store/store.js';
import { InboxQueue } from './inbox/inbox-queue.js';
import { JetStreamQueue } from './jetstream/jetstream-queue.js';
import { RedisClusterQueue } from './redis-cluster/redis-cluster-queue.js';
import type { Queue } from './queue.js';
import { RedisStreamsQueue } from './redis-streams/redis-streams-queue.js';

export async function createQueue(config: Config, store: Store, logger: Logger): Promise<Queue> {
  const onWarning = (message: string, error?: unknown) =>
    logger.warn(error instanceof Error ? { reason: error.message } : {}, message);
  if (config.natsUrl !== undefined) return openJetStream(config, store, logger, onWarning);
  if (config.redisClusterNodes.length > 0) {
    const queue = await RedisClusterQueue.open(store, {
      nodes: config.redisClusterNodes,
      shards: config.redisStreamShards,
      minReplicas: config.redisMinReplicas,
      replicaWaitMs: 1000,
      keyPrefix: config.redisKeyPrefix,
      maxEvents: config.queueMaxEvents,
      retryAfterSeconds: config.retryAfterSeconds,
      batchMessages: config.workerBatchMessages,
      blockMs: config.workerBlockMs,
      claimIdleMs: config.claimIdleMs,
      ledgerRetentionMs: config.ledgerRetentionMs,
      onWarning,
    });
    const durability = await queue.durability();
    logger.info(
      { queue: 'redis-cluster', durability: durability.mode, shards: config.redisStreamShards },
      `queue: Redis Cluster, ${config.redisStreamShards} streams, ${config.redisMinReplicas} replicas confirm each publish`,
    );
    return queue;
  }
  if (config.redisUrl === undefined) {
    logger.info({ queue: 'inbox' }, `queue: inbox table in the ${store.kind} store`);
    return new InboxQueue(store, {
      maxEvents: config.queueMaxEvents,
      retryAfterSeconds: config.retryAfterSeconds,
      batchMessages: config.workerBatchMessages,
      blockMs: config.workerBlockMs,
      receiptRetentionMs: config.ledgerRetentionMs,
      onWarning,
    });
  }
  const queue = new RedisStreamsQueue(store, {
    url: config.redisUrl,
    keyPrefix: config.redisKeyPrefix,
    maxEvents: config.queueMaxEvents,
    retryAfterSeconds: config.retryAfterSeconds,
    batchMessages: config.workerBatchMessages,
    blockMs: config.workerBlockMs,
    claimIdleMs: config.claimIdleMs,
    ledgerRetentionMs: config.ledgerRetentionMs,
    onWarning,
  });
  try {
    await queue.ensureGroup();
    const durability = await queue.durability();
    const log = durability.survivesServerCrash
      ? logger.info.bind(logger)
      : logger.warn.bind(logger);
    log(
      { queue: 'redis-streams', durability: durability.mode },
      durability.survivesServerCrash
        ? 'queue: Redis Streams; Redis persists every write (appendfsync always)'
        : `queue: Redis Streams; Redis durability is "${durability.mode}": accepted events can be lost if Redis itself crashes`,
    );
  } catch (error) {
    await queue.close();
    throw error;
  }
  return queue;
}

async function openJetStream(
  config: Config,
  store: Store,
  logger: Logger,
  onWarning: (message: string, error?: unknown) => void,
): Promise<Queue> {
  const queue = await JetStreamQueue.open(store, {
    url: config.natsUrl ?? '',
    stream: config.natsStream,
    replicas: config.natsReplicas,
    maxEvents: config.queueMaxEvents,
    maxBytes: config.natsMaxBytes,
    maxDeliver: config.natsMaxDeliver,
    retryAfterSeconds: config.retryAfterSeconds,
    batchMessages: config.workerBatchMessages,
    blockMs: config.workerBlockMs,
    claimIdleMs: config.claimIdleMs,
    ledgerRetentionMs: config.ledgerRetentionMs,
    onWarning,
  });
  const durability = await queue.durability();
  (durability.survivesServerCrash ? logger.info.bind(logger) : logger.warn.bind(logger))(
    { queue: 'jetstream', durability: durability.mode },
    durability.survivesServerCrash
      ? `queue: JetStream stream ${config.natsStream}, ${config.natsReplicas} replicas`
      : `queue: JetStream stream ${config.natsStream} on one server: a crash of its host (not of the process) can lose what it had not yet synced to disk`,
  );
  return queue;
}
