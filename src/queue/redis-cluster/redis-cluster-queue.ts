/**
 * Queue backend on Redis Cluster: `shards` Redis Streams queues (redis-streams/), each a stream
 * and its depth hash under one hash tag, the tags chosen so the shards' slots spread evenly over
 * the slot range and so over every master. A publish goes to the shard of its first event's topic
 * (one topic's order of arrival holds within its shard); every worker reads every shard, taking
 * over entries dead consumers left pending; the store's ledger keeps counts exact. With
 * `minReplicas`, a publish is answered only after that many replicas hold the entry (`WAIT`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import type { AcceptedBatch } from '../../log-event.js';
import {
  EMPTY_RESULT,
  type ConsumeResult,
  type DurabilityInfo,
  type Queue,
  type QueueConsumer,
  type QueueDepth,
} from '../queue.js';
import {
  ACK_LUA,
  ENQUEUE_LUA,
  mapRedisError,
  type ScriptedRedis,
} from '../redis-streams/redis-connection.js';
import {
  RedisStreamsQueue,
  type RedisStreamsQueueOptions,
  type StreamsStore,
} from '../redis-streams/redis-streams-queue.js';

export interface RedisClusterQueueOptions extends Omit<RedisStreamsQueueOptions, 'redis' | 'url'> {
  /** Seed nodes, `host:port` each. */
  readonly nodes: readonly string[];
  /** Streams the queue is spread over. */
  readonly shards: number;
}

const SLOTS = 16384;

/** Opens a Cluster client with the queue's scripts; Redis failures surface as command errors. */
function connectCluster(nodes: readonly string[]): ScriptedRedis {
  const cluster = new Cluster(
    nodes.map((n) => {
      const at = n.lastIndexOf(':');
      return { host: n.slice(0, at), port: Number(n.slice(at + 1)) };
    }),
    {
      redisOptions: { protocol: 2, maxRetriesPerRequest: 1, connectTimeout: 5000 },
      // A failover moves slots: retry the command on the new master for a while.
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 200,
      clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      enableOfflineQueue: true,
    },
  );
  cluster.defineCommand('aggEnqueue', { numberOfKeys: 2, lua: ENQUEUE_LUA });
  cluster.defineCommand('aggAck', { numberOfKeys: 2, lua: ACK_LUA });
  cluster.on('error', () => undefined);
  // The streams code speaks the commands both clients share (call, hmget, xrange, pipeline…).
  return cluster as unknown as ScriptedRedis;
}

/** A 32-bit FNV-1a hash of a topic, to pick its shard the same way in every process. */
function topicHash(topic: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) {
    h ^= topic.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * The first event's topic of a body whose producer did not say it (shipper envelopes): a bounded
 * look at its first kilobyte, not a parse; undefined if it is not there.
 */
function firstTopic(body: Buffer | string): string | undefined {
  const head = typeof body === 'string' ? body.slice(0, 1024) : body.subarray(0, 1024).toString();
  return /"topic"\s*:\s*"((?:[^"\\]|\\.)*)"/.exec(head)?.[1];
}

export class RedisClusterQueue implements Queue {
  readonly kind = 'redis-cluster' as const;
  private next = 0;

  private constructor(
    private readonly redis: ScriptedRedis,
    private readonly shards: readonly RedisStreamsQueue[],
    private readonly store: StreamsStore,
    private readonly options: RedisClusterQueueOptions,
  ) {}

  /** Connects, chooses the shards' hash tags and creates their consumer groups. */
  static async open(
    store: StreamsStore,
    options: RedisClusterQueueOptions,
  ): Promise<RedisClusterQueue> {
    const redis = connectCluster(options.nodes);
    try {
      const tags = await spreadTags(redis, options.shards);
      const shards = tags.map(
        (tag) =>
          new RedisStreamsQueue(store, {
            ...options,
            url: '',
            redis,
            keyPrefix: `${options.keyPrefix}:{${tag}}`,
            // Each shard refuses past its share, so the whole holds about maxEvents.
            maxEvents: Math.max(1, Math.ceil(options.maxEvents / options.shards)),
          }),
      );
      await Promise.all(shards.map((s) => s.ensureGroup()));
      return new RedisClusterQueue(redis, shards, store, options);
    } catch (error) {
      redis.disconnect();
      throw mapRedisError(error);
    }
  }

  async enqueue(batch: AcceptedBatch): Promise<string> {
    const topic = batch.topic ?? firstTopic(batch.body);
    const shard =
      topic !== undefined
        ? topicHash(topic) % this.shards.length
        : (this.next = (this.next + 1) % this.shards.length);
    const id = await (this.shards[shard] as RedisStreamsQueue).enqueue(batch);
    return `${shard}/${id}`;
  }

  get sharedRedis(): unknown {
    return this.redis;
  }

  async depth(): Promise<QueueDepth> {
    const depths = await Promise.all(this.shards.map((s) => s.depth()));
    return depths.reduce(
      (a, d) => ({ messages: a.messages + d.messages, events: a.events + d.events }),
      { messages: 0, events: 0 },
    );
  }

  /** The shard and entry of a message id `<shard>/<entry id>`. */
  private locate(messageId: string): { shard: RedisStreamsQueue; entry: string } | undefined {
    const match = /^(\d+)\/(\d+-\d+)$/.exec(messageId);
    const shard = match === null ? undefined : this.shards[Number(match[1])];
    return shard === undefined ? undefined : { shard, entry: match?.[2] ?? '' };
  }

  receiptKey(messageId: string): string {
    const at = this.locate(messageId);
    return at === undefined ? messageId : at.shard.receiptKey(at.entry);
  }

  async isQueued(messageId: string): Promise<boolean> {
    const at = this.locate(messageId);
    return at === undefined ? false : at.shard.isQueued(at.entry);
  }

  createConsumer(name: string): QueueConsumer {
    return new ShardedConsumer(
      name,
      this.shards.map((s) => s.createConsumer(name)),
      this.options.blockMs,
    );
  }

  /** Each shard's upkeep; the ledger is pruned once, before the oldest entry any shard holds. */
  async maintain(): Promise<void> {
    const cutoffs = await Promise.all(this.shards.map((s) => s.maintainStream()));
    await this.store.pruneLedger(new Date(Math.min(...cutoffs)));
  }

  async durability(): Promise<DurabilityInfo> {
    const base = await (this.shards[0] as RedisStreamsQueue).durability();
    const replicas = this.options.minReplicas ?? 0;
    return replicas > 0
      ? { mode: `${base.mode}+wait-${replicas}`, survivesServerCrash: true }
      : base;
  }

  async ping(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.depth()));
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
    this.redis.disconnect();
  }
}

/**
 * One hash tag per shard, shard i's slot in the i-th of `count` equal parts of the slot range, so
 * the shards spread over the masters as evenly as the slots do. The same in every process.
 */
async function spreadTags(redis: ScriptedRedis, count: number): Promise<string[]> {
  const tags: string[] = [];
  for (let i = 0; i < count; i++) {
    const low = Math.floor((i * SLOTS) / count);
    const high = Math.floor(((i + 1) * SLOTS) / count);
    let found: string | undefined;
    for (let base = 0; found === undefined && base < 4096; base += 64) {
      const candidates = Array.from({ length: 64 }, (_, j) => `q${i}-${base + j}`);
      const slots = await Promise.all(
        candidates.map((c) => redis.call('CLUSTER', 'KEYSLOT', c) as Promise<number>),
      );
      found = candidates.find((_, j) => (slots[j] ?? -1) >= low && (slots[j] ?? -1) < high);
    }
    if (found === undefined) throw new Error(`no hash tag found for shard ${i} of ${count}`);
    tags.push(found);
  }
  return tags;
}

/** A worker's consumer over every shard: takes the next shard that has work, in turn. */
class ShardedConsumer implements QueueConsumer {
  private start = 0;

  constructor(
    readonly name: string,
    private readonly parts: readonly QueueConsumer[],
    private readonly blockMs: number,
  ) {}

  async processNext(signal: AbortSignal): Promise<ConsumeResult> {
    for (let k = 0; k < this.parts.length; k++) {
      const i = (this.start + k) % this.parts.length;
      const result = await (this.parts[i] as QueueConsumer).processNext(signal);
      if (result.messages + result.deadLettered > 0) {
        this.start = (i + 1) % this.parts.length;
        return result;
      }
    }
    // Nothing anywhere: the shards' reads do not block, so wait here (a fraction of blockMs).
    await sleep(Math.min(this.blockMs, 100), undefined, { signal }).catch(() => undefined);
    return EMPTY_RESULT;
  }

  async close(): Promise<void> {
    await Promise.all(this.parts.map((p) => p.close()));
  }
}
