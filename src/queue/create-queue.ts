/** Chooses the Queue backend from the configuration: Redis Streams if REDIS_URL is set, else the inbox. */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Store } from '../store/store.js';
import { InboxQueue } from './inbox/inbox-queue.js';
import type { Queue } from './queue.js';
import { RedisStreamsQueue } from './redis-streams/redis-streams-queue.js';

export async function createQueue(config: Config, store: Store, logger: Logger): Promise<Queue> {
  const onWarning = (message: string, error?: unknown) =>
    logger.warn(error instanceof Error ? { reason: error.message } : {}, message);
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
