/**
 * One worker's consumer of the Redis Streams queue: reads entries of the consumer group (first
 * those another consumer left pending past `claimIdleMs`, then its own pending ones after a
 * failure, then new ones), applies them under the poison-message policy and acknowledges each
 * group of entries only after the store committed it.
 */
import { consumerShard } from '../../store/counter-shards.js';
import type { DeadLetterStore, EventApplier, QueuedBatch } from '../../store/store.js';
import { tracedApply } from '../../tracing.js';
import { applyDeliveredWithPoisonPolicy } from '../poison-policy.js';
import {
  addResults,
  EMPTY_RESULT,
  bodyBytes,
  groupSize,
  type ConsumeResult,
  type QueueConsumer,
} from '../queue.js';
import { connect, mapRedisError, type ScriptedRedis } from './redis-connection.js';

/** A stream entry as a queue message, with the event count the depth needs on ack. */
interface Entry extends QueuedBatch {
  readonly count: number;
}

/** What a consumer needs of its queue. */
export interface StreamAccess {
  /** Creates the consumer group if missing (`force`: again, after Redis lost it). */
  ensureGroup(force?: boolean): Promise<void>;
  readonly keys: { stream: string; depth: string; group: string };
  /** Acknowledges and deletes entries, taking them off the depth. */
  ack(entries: readonly { id: string; count: number }[]): Promise<void>;
  /** The ledger id of a stream entry. */
  receiptKey(entryId: string): string;
}

export interface StreamConsumerOptions {
  readonly url: string;
  /**
   * A client shared with other consumers (the Redis Cluster queue's); it is not closed here, and
   * reads do not block on it.
   */
  readonly redis?: ScriptedRedis | undefined;
  readonly batchMessages: number;
  /** Longest wait of a read for new entries; 0 reads without waiting. */
  readonly blockMs: number;
  readonly claimIdleMs: number;
  readonly onWarning?: ((message: string, error?: unknown) => void) | undefined;
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
    let traceparent: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'n') count = Number(fields[i + 1]);
      else if (fields[i] === 'b') body = fields[i + 1] ?? body;
      else if (fields[i] === 't') traceparent = fields[i + 1];
    }
    entries.push({ id, count, body, traceparent });
  }
  return { entries, gone };
}

export class RedisStreamConsumer implements QueueConsumer {
  /** A connection of its own: XREADGROUP BLOCK holds the connection while it waits. */
  private readonly redis: ScriptedRedis;
  private readonly shard: number;
  /** After a failure, this consumer's own pending entries are retried before new ones. */
  private ownPendingFirst = true;
  private claimCursor = '0-0';
  private lastClaimAt = 0;

  constructor(
    readonly name: string,
    private readonly queue: StreamAccess,
    private readonly store: EventApplier & DeadLetterStore,
    private readonly options: StreamConsumerOptions,
    private readonly onClose: () => void,
  ) {
    this.redis = options.redis ?? connect(options.url);
    this.shard = consumerShard(name);
  }

  async processNext(signal: AbortSignal): Promise<ConsumeResult> {
    await this.queue.ensureGroup();
    let batch: { entries: Entry[]; gone: string[] };
    // A blocking read cannot be cancelled; closing the connection ends it. Entries delivered in
    // that instant stay pending and are taken over after claimIdleMs, so nothing is lost.
    const onAbort = (): void => {
      if (this.options.redis === undefined) this.redis.disconnect();
    };
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
    return this.readGroup('>', this.options.blockMs > 0 ? ['BLOCK', this.options.blockMs] : []);
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
    return tracedApply(
      entries.map((e) => e.traceparent),
      () =>
        applyDeliveredWithPoisonPolicy(this.store, messages, this.shard, this.options.onWarning),
    );
  }

  async close(): Promise<void> {
    this.onClose();
    if (this.options.redis === undefined) this.redis.disconnect();
  }
}
