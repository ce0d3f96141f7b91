/**
 * Queue backend on Redis Streams. One stream entry per accepted request; one consumer group that
 * every worker of every process joins. A worker reads entries (XREADGROUP), stores them, and only
 * then acknowledges and deletes them in one script, so an entry stays in the group's pending list
 * until the store has it. Entries a dead worker left pending are taken over with XAUTOCLAIM after
 * `claimIdleMs`. The stream is never trimmed by length: acknowledged entries are deleted, and
 * `POST /publish` is refused (503) past `maxEvents` instead.
 */
import { AggregatorError, QueueUnavailableError } from '../../errors.js';
import type { AcceptedBatch } from '../../log-event.js';
import type { DeadLetterStore, EventApplier, ReceiptStore } from '../../store/store.js';
import type { DurabilityInfo, Queue, QueueConsumer, QueueDepth } from '../queue.js';
import {
  connect,
  DEAD_CONSUMER_IDLE_MS,
  GROUP,
  mapRedisError,
  type ScriptedRedis,
} from './redis-connection.js';
import { RedisStreamConsumer } from './redis-stream-consumer.js';

export interface RedisStreamsQueueOptions {
  readonly url: string;
  /**
   * A client shared with other queues (the shards of the Redis Cluster queue); it is not closed
   * here and its consumers read without blocking.
   */
  readonly redis?: ScriptedRedis | undefined;
  /**
   * Replicas that must hold an entry before enqueue resolves (Redis `WAIT`); 0 does not wait.
   * Fewer within `replicaWaitMs` rejects with AGG_ERR_QUEUE_UNAVAILABLE.
   */
  readonly minReplicas?: number | undefined;
  readonly replicaWaitMs?: number | undefined;
  /** Prefix of every key this queue owns. */
  readonly keyPrefix: string;
  readonly maxEvents: number;
  readonly retryAfterSeconds: number;
  /** Messages applied per transaction. */
  readonly batchMessages: number;
  readonly blockMs: number;
  readonly claimIdleMs: number;
  readonly ledgerRetentionMs: number;
  /** Called with each consumer-side failure that was handled without surfacing. */
  readonly onWarning?: (message: string, error?: unknown) => void;
}

/** What the Redis Streams queue needs of the store: applying, parking, pruning the ledger. */
export type StreamsStore = EventApplier & DeadLetterStore & ReceiptStore;

export class RedisStreamsQueue implements Queue {
  readonly kind = 'redis-streams' as const;
  private readonly redis: ScriptedRedis;
  private readonly streamKey: string;
  private readonly depthKey: string;
  private readonly consumers = new Set<RedisStreamConsumer>();
  private groupReady: Promise<void> | undefined;

  constructor(
    private readonly store: StreamsStore,
    private readonly options: RedisStreamsQueueOptions,
  ) {
    this.redis = options.redis ?? connect(options.url, { commandTimeout: 10_000 });
    this.streamKey = `${options.keyPrefix}:stream`;
    this.depthKey = `${options.keyPrefix}:depth`;
  }

  /** Creates the consumer group (and the stream) if missing; also after Redis lost its data. */
  ensureGroup(force = false): Promise<void> {
    if (this.groupReady === undefined || force) {
      this.groupReady = this.redis
        .call('XGROUP', 'CREATE', this.streamKey, GROUP, '0', 'MKSTREAM')
        .then(
          () => undefined,
          (error: unknown) => {
            if (error instanceof Error && error.message.includes('BUSYGROUP')) return;
            this.groupReady = undefined;
            throw mapRedisError(error);
          },
        );
    }
    return this.groupReady;
  }

  async enqueue(batch: AcceptedBatch): Promise<string> {
    let id: string | null;
    const minReplicas = this.options.minReplicas ?? 0;
    try {
      if (minReplicas > 0) {
        // WAIT must follow the write on the same connection to the master that took it.
        id = await this.enqueueAndWait(batch, minReplicas);
      } else {
        id = await this.redis.aggEnqueue(
          this.streamKey,
          this.depthKey,
          this.options.maxEvents,
          batch.eventCount,
          batch.body,
          batch.traceparent ?? '',
        );
      }
    } catch (error) {
      throw mapRedisError(error, this.options.retryAfterSeconds);
    }
    if (id === null) {
      throw new AggregatorError('AGG_ERR_QUEUE_FULL', undefined, [], {
        retryAfterSeconds: this.options.retryAfterSeconds,
      });
    }
    return id;
  }

  private async enqueueAndWait(batch: AcceptedBatch, minReplicas: number): Promise<string | null> {
    const pipeline = this.redis.pipeline() as unknown as {
      aggEnqueue(...args: unknown[]): unknown;
      call(...args: unknown[]): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    pipeline.aggEnqueue(
      this.streamKey,
      this.depthKey,
      this.options.maxEvents,
      batch.eventCount,
      batch.body,
      batch.traceparent ?? '',
    );
    pipeline.call('WAIT', minReplicas, this.options.replicaWaitMs ?? 1000);
    const replies = (await pipeline.exec()) ?? [];
    const [enqueued, waited] = replies;
    if (enqueued?.[0]) throw enqueued[0];
    if (waited?.[0]) throw waited[0];
    const id = (enqueued?.[1] ?? null) as string | null;
    if (id !== null && Number(waited?.[1] ?? 0) < minReplicas) {
      throw new QueueUnavailableError(
        new Error(`only ${String(waited?.[1])} of ${minReplicas} replicas confirmed the entry`),
      );
    }
    return id;
  }

  get sharedRedis(): unknown {
    return this.redis;
  }

  async depth(): Promise<QueueDepth> {
    try {
      const [events, messages] = await this.redis.hmget(this.depthKey, 'events', 'messages');
      return { events: Number(events ?? 0), messages: Number(messages ?? 0) };
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  receiptKey(messageId: string): string {
    return `${this.streamKey}/${messageId}`;
  }

  async isQueued(messageId: string): Promise<boolean> {
    if (!/^\d+-\d+$/.test(messageId)) return false;
    try {
      const found = (await this.redis.xrange(this.streamKey, messageId, messageId)) as unknown[];
      return found.length > 0;
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  createConsumer(name: string): QueueConsumer {
    const consumer = new RedisStreamConsumer(
      name,
      this,
      this.store,
      this.options.redis === undefined ? this.options : { ...this.options, blockMs: 0 },
      () => this.consumers.delete(consumer),
    );
    this.consumers.add(consumer);
    return consumer;
  }

  /** @internal used by consumers */
  get keys(): { stream: string; depth: string; group: string } {
    return { stream: this.streamKey, depth: this.depthKey, group: GROUP };
  }

  /** @internal used by consumers: acknowledges entries and updates the depth in one script. */
  async ack(entries: readonly { id: string; count: number }[]): Promise<void> {
    if (entries.length === 0) return;
    const args: (string | number)[] = [];
    for (const e of entries) args.push(e.id, e.count);
    try {
      await this.redis.aggAck(this.streamKey, this.depthKey, GROUP, ...args);
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  async maintain(): Promise<void> {
    const cutoff = await this.maintainStream();
    await this.store.pruneLedger(new Date(cutoff));
  }

  /**
   * Upkeep of the stream itself: the group exists, dead consumers are forgotten. Resolves with
   * the time (ms since the epoch) before which ledger rows of this stream's entries can go.
   */
  async maintainStream(): Promise<number> {
    try {
      await this.ensureGroup();
      const cutoff = await this.ledgerCutoff();
      await this.forgetDeadConsumers();
      return cutoff;
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  /**
   * Ledger rows exist so a redelivered entry is not applied twice. An entry can be redelivered
   * only while it is pending, so rows older than the oldest pending entry (less a margin for clock
   * differences between Redis and the database) can go.
   */
  private async ledgerCutoff(): Promise<number> {
    const summary = (await this.redis.call('XPENDING', this.streamKey, GROUP)) as [
      number,
      string | null,
      string | null,
      unknown,
    ];
    const now = Date.now();
    let cutoff = now - this.options.ledgerRetentionMs;
    const oldestPending = summary[1];
    if (summary[0] > 0 && oldestPending !== null) {
      const enqueuedAt = Number(oldestPending.split('-')[0]);
      cutoff = Math.min(cutoff, enqueuedAt - this.options.ledgerRetentionMs);
    }
    return cutoff;
  }

  private async forgetDeadConsumers(): Promise<void> {
    const raw = (await this.redis.call('XINFO', 'CONSUMERS', this.streamKey, GROUP)) as unknown[][];
    for (const fields of raw) {
      const info: Record<string, unknown> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) info[String(fields[i])] = fields[i + 1];
      if (Number(info.pending) === 0 && Number(info.idle) > DEAD_CONSUMER_IDLE_MS) {
        await this.redis.call('XGROUP', 'DELCONSUMER', this.streamKey, GROUP, String(info.name));
      }
    }
  }

  async durability(): Promise<DurabilityInfo> {
    try {
      const info = await this.redis.info('persistence');
      const aof = /aof_enabled:1/.test(info);
      let fsync = 'unknown';
      let snapshots = !/rdb_last_bgsave_status:ok[\s\S]*rdb_saves:0/.test(info);
      try {
        const reply = (await this.redis.call('CONFIG', 'GET', 'appendfsync')) as string[];
        fsync = reply[1] ?? 'unknown';
        const save = (await this.redis.call('CONFIG', 'GET', 'save')) as string[];
        snapshots = (save[1] ?? '').trim() !== '';
      } catch {
        // CONFIG is often disabled on managed Redis; INFO alone still tells whether AOF is on.
      }
      if (aof && fsync === 'always') return { mode: 'aof-always', survivesServerCrash: true };
      if (aof) return { mode: `aof-${fsync}`, survivesServerCrash: false };
      return { mode: snapshots ? 'rdb-snapshots' : 'none', survivesServerCrash: false };
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  async ping(): Promise<void> {
    try {
      await this.redis.ping();
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.close()));
    if (this.options.redis === undefined) this.redis.disconnect();
  }
}
