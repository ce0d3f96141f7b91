/**
 * Queue backend on Redis Streams. One stream entry per accepted request; one consumer group that
 * every worker of every process joins. A worker reads entries (XREADGROUP), stores them, and only
 * then acknowledges and deletes them in one script, so an entry stays in the group's pending list
 * until the store has it. Entries a dead worker left pending are taken over with XAUTOCLAIM after
 * `claimIdleMs`. The stream is never trimmed by length: acknowledged entries are deleted, and
 * `POST /publish` is refused (503) past `maxEvents` instead.
 */
import { Redis } from 'ioredis';
import { AggregatorError, QueueUnavailableError } from '../../errors.js';
import type { AcceptedBatch } from '../../log-event.js';
import { consumerShard } from '../../store/counter-shards.js';
import type {
  DeadLetterStore,
  EventApplier,
  QueuedBatch,
  ReceiptStore,
} from '../../store/store.js';
import { applyWithPoisonPolicy } from '../poison-policy.js';
import {
  addResults,
  EMPTY_RESULT,
  bodyBytes,
  groupSize,
  type ConsumeResult,
  type DurabilityInfo,
  type Queue,
  type QueueConsumer,
  type QueueDepth,
} from '../queue.js';

export interface RedisStreamsQueueOptions {
  readonly url: string;
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

/**
 * Appends one entry and counts it in the depth hash, atomically, unless the queue is full.
 * KEYS: stream, depth hash. ARGV: max events, event count, request body. Returns the id or false.
 */
const ENQUEUE_LUA = `
local depth = tonumber(redis.call('HGET', KEYS[2], 'events') or '0')
local n = tonumber(ARGV[2])
if depth > 0 and depth + n > tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[2], 'b', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'events', n)
redis.call('HINCRBY', KEYS[2], 'messages', 1)
return id`;

/**
 * Acknowledges and deletes entries, and takes exactly the acknowledged ones off the depth.
 * KEYS: stream, depth hash. ARGV: group, then id and event count pairs. Returns entries acked.
 */
const ACK_LUA = `
local acked, events = 0, 0
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    acked = acked + 1
    events = events + tonumber(ARGV[i + 1])
  end
end
if acked > 0 then
  redis.call('HINCRBY', KEYS[2], 'events', -events)
  redis.call('HINCRBY', KEYS[2], 'messages', -acked)
end
return acked`;

const GROUP = 'workers';
/** Consumers with nothing pending and silent this long are removed from the group. */
const DEAD_CONSUMER_IDLE_MS = 3600_000;

interface ScriptCommands {
  aggEnqueue(
    stream: string,
    depth: string,
    max: number,
    n: number,
    body: Buffer | string,
  ): Promise<string | null>;
  aggAck(
    stream: string,
    depth: string,
    group: string,
    ...idsAndCounts: (string | number)[]
  ): Promise<number>;
}

type ScriptedRedis = Redis & ScriptCommands;

/** A stream entry as a queue message, with the event count the depth needs on ack. */
interface Entry extends QueuedBatch {
  readonly count: number;
}

function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|max retries|Stream isn't writeable|LOADING|MASTERDOWN|READONLY|Command timed out|^BUSY|TRYAGAIN|CLUSTERDOWN/i.test(
    `${error.message} ${String((error as { code?: string }).code ?? '')}`,
  );
}

/** The one place Redis failures become the registry's errors. */
function mapRedisError(error: unknown, retryAfterSeconds = 1): Error {
  if (error instanceof AggregatorError) return error;
  if (isConnectionError(error)) return new QueueUnavailableError(error);
  // Redis at its maxmemory refuses writes: for a publisher that is a full queue.
  if (error instanceof Error && error.message.startsWith('OOM')) {
    return new AggregatorError('AGG_ERR_QUEUE_FULL', 'Redis is out of memory; retry later', [], {
      cause: error,
      retryAfterSeconds,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}

function connect(url: string, extra: { commandTimeout?: number } = {}): ScriptedRedis {
  const redis = new Redis(url, {
    protocol: 2,
    // Fail a command quickly while Redis is away instead of queueing it for long: the API
    // answers 503 and the publisher retries; workers back off.
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    ...extra,
  });
  redis.defineCommand('aggEnqueue', { numberOfKeys: 2, lua: ENQUEUE_LUA });
  redis.defineCommand('aggAck', { numberOfKeys: 2, lua: ACK_LUA });
  // Errors reach the callers of commands; without a listener ioredis would print each retry.
  redis.on('error', () => undefined);
  return redis as ScriptedRedis;
}

/** Parses the entries of an XREADGROUP/XAUTOCLAIM reply; a deleted entry has no fields. */
function parseEntries(raw: unknown): { entries: Entry[]; gone: string[] } {
  const entries: Entry[] = [];
  const gone: string[] = [];
  for (const item of (raw ?? []) as [string, string[] | null][]) {
    const [id, fields] = item;
    if (fields === null || fields.length === 0) {
      gone.push(id);
      continue;
    }
    let count = 0;
    let body = '{"events":[]}';
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'n') count = Number(fields[i + 1]);
      else if (fields[i] === 'b') body = fields[i + 1] ?? body;
    }
    entries.push({ id, count, body });
  }
  return { entries, gone };
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
    this.redis = connect(options.url, { commandTimeout: 10_000 });
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
    try {
      id = await this.redis.aggEnqueue(
        this.streamKey,
        this.depthKey,
        this.options.maxEvents,
        batch.eventCount,
        batch.body,
      );
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
    const consumer = new RedisStreamConsumer(name, this, this.store, this.options, () =>
      this.consumers.delete(consumer),
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
    try {
      await this.ensureGroup();
      await this.pruneLedger();
      await this.forgetDeadConsumers();
    } catch (error) {
      throw mapRedisError(error);
    }
  }

  /**
   * Ledger rows exist so a redelivered entry is not applied twice. An entry can be redelivered
   * only while it is pending, so rows older than the oldest pending entry (less a margin for clock
   * differences between Redis and the database) can go.
   */
  private async pruneLedger(): Promise<void> {
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
    await this.store.pruneLedger(new Date(cutoff));
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
    this.redis.disconnect();
  }
}

class RedisStreamConsumer implements QueueConsumer {
  /** A connection of its own: XREADGROUP BLOCK holds the connection while it waits. */
  private readonly redis: ScriptedRedis;
  private readonly shard: number;
  /** After a failure, this consumer's own pending entries are retried before new ones. */
  private ownPendingFirst = true;
  private claimCursor = '0-0';
  private lastClaimAt = 0;

  constructor(
    readonly name: string,
    private readonly queue: RedisStreamsQueue,
    private readonly store: StreamsStore,
    private readonly options: RedisStreamsQueueOptions,
    private readonly onClose: () => void,
  ) {
    this.redis = connect(options.url);
    this.shard = consumerShard(name);
  }

  async processNext(signal: AbortSignal): Promise<ConsumeResult> {
    await this.queue.ensureGroup();
    let batch: { entries: Entry[]; gone: string[] };
    // A blocking read cannot be cancelled; closing the connection ends it. Entries delivered in
    // that instant stay pending and are taken over after claimIdleMs, so nothing is lost.
    const onAbort = (): void => this.redis.disconnect();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      batch = await this.read();
    } catch (error) {
      if (signal.aborted) return EMPTY_RESULT;
      if (error instanceof Error && error.message.includes('NOGROUP')) {
        await this.queue.ensureGroup(true);
        return EMPTY_RESULT;
      }
      throw mapRedisError(error);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    // Entries deleted while pending carry nothing to apply; acknowledging clears them.
    if (batch.gone.length > 0) await this.queue.ack(batch.gone.map((id) => ({ id, count: 0 })));
    let total = EMPTY_RESULT;
    try {
      // Large messages are applied in several statements, each acknowledged after its commit.
      for (let rest = batch.entries; rest.length > 0;) {
        const take = groupSize(rest, rest.length, (e) => bodyBytes(e.body));
        const chunk = rest.slice(0, take);
        rest = rest.slice(take);
        total = addResults(total, await this.apply(chunk));
        await this.queue.ack(chunk);
      }
      return total;
    } catch (error) {
      this.ownPendingFirst = true;
      throw error;
    }
  }

  private async read(): Promise<{ entries: Entry[]; gone: string[] }> {
    const { stream, group } = this.queue.keys;
    const count = this.options.batchMessages;
    const now = Date.now();
    if (now - this.lastClaimAt >= Math.min(this.options.claimIdleMs / 2, 5000)) {
      const reply = (await this.redis.call(
        'XAUTOCLAIM',
        stream,
        group,
        this.name,
        this.options.claimIdleMs,
        this.claimCursor,
        'COUNT',
        count,
      )) as [string, unknown, string[]?];
      this.claimCursor = reply[0];
      if (this.claimCursor === '0-0') this.lastClaimAt = now;
      const claimed = parseEntries(reply[1]);
      for (const id of reply[2] ?? []) claimed.gone.push(id);
      if (claimed.entries.length > 0) {
        this.options.onWarning?.(`${this.name} took over ${claimed.entries.length} stale entries`);
        return claimed;
      }
    }
    if (this.ownPendingFirst) {
      const own = await this.readGroup('0', []);
      if (own.entries.length > 0 || own.gone.length > 0) return own;
      this.ownPendingFirst = false;
    }
    return this.readGroup('>', ['BLOCK', this.options.blockMs]);
  }

  /** XREADGROUP from `from`: '0' re-reads this consumer's pending entries, '>' takes new ones. */
  private async readGroup(
    from: '0' | '>',
    block: (string | number)[],
  ): Promise<{ entries: Entry[]; gone: string[] }> {
    const { stream, group } = this.queue.keys;
    const reply = (await this.redis.call(
      'XREADGROUP',
      'GROUP',
      group,
      this.name,
      'COUNT',
      this.options.batchMessages,
      ...block,
      'STREAMS',
      stream,
      from,
    )) as [string, unknown][] | null;
    return parseEntries(reply?.[0]?.[1]);
  }

  /**
   * Applies entries in one transaction. If the store refuses the data, the entries are applied one
   * by one so that only the refused ones go to the dead-letter table.
   */
  private async apply(entries: Entry[]): Promise<ConsumeResult> {
    // Stream ids are unique within one stream only: the ledger knows a message by both, under
    // the key its receipt is looked up by.
    const messages = entries.map((e) => ({
      id: this.queue.receiptKey(e.id),
      body: e.body,
      count: e.count,
    }));
    return applyWithPoisonPolicy({
      applyAll: () => this.store.applyBatches(messages, this.shard),
      messages: () => Promise.resolve(messages),
      applyOne: (message) => this.store.applyBatches([message], this.shard),
      deadLetter: (message, reason) =>
        this.store.deadLetter({
          messageId: message.id,
          body: message.body,
          reason,
          eventCount: message.count,
        }),
      describe: (message) => `message ${message.id}`,
      onWarning: this.options.onWarning,
    });
  }

  async close(): Promise<void> {
    this.onClose();
    this.redis.disconnect();
  }
}
