/**
 * Queue backend on the store itself: an `inbox` table. `enqueue` commits a row before the API
 * answers; a worker claims rows (`FOR UPDATE SKIP LOCKED`, so workers never take the same row),
 * applies them and deletes them in the same transaction. There is no separate acknowledgement,
 * so nothing can be applied twice or lost whatever moment the process dies.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AggregatorError, StoreRejectedError } from '../../errors.js';
import type { AcceptedBatch } from '../../log-event.js';
import { consumerShard } from '../../store/counter-shards.js';
import type { ReceiptStore, Store, StoreConnection } from '../../store/store.js';
import { applyWithPoisonPolicy } from '../poison-policy.js';
import { tracedApplyLinkingResult } from '../../tracing.js';
import {
  bodyBytes,
  groupSize,
  type ConsumeResult,
  type DurabilityInfo,
  type Queue,
  type QueueConsumer,
  type QueueDepth,
} from '../queue.js';

export interface InboxQueueOptions {
  readonly maxEvents: number;
  readonly retryAfterSeconds: number;
  readonly batchMessages: number;
  /** Longest wait of an idle worker before it looks at the inbox again. */
  readonly blockMs: number;
  /** How long the receipt of an applied message is kept (LEDGER_RETENTION_MS). */
  readonly receiptRetentionMs: number;
  readonly onWarning?: (message: string, error?: unknown) => void;
}

/** The backpressure check reads a depth at most this old, so publishing never scans the inbox. */
const DEPTH_CACHE_MS = 250;
const IDLE_POLL_MIN_MS = 20;
/** Most requests written by one inbox insert. */
const MAX_GROUP = 200;

interface PendingAppend {
  readonly batch: AcceptedBatch;
  resolve(id: string): void;
  reject(error: unknown): void;
}

/** What the inbox queue needs of the store: its inbox, its receipts, its connection. */
export type InboxStore = Pick<Store, 'inbox'> & ReceiptStore & StoreConnection;

export class InboxQueue implements Queue {
  readonly kind = 'inbox' as const;
  private cachedDepth: { value: QueueDepth; at: number } | undefined;
  private readonly pending: PendingAppend[] = [];
  private flushing = false;
  private depthInFlight: Promise<QueueDepth> | undefined;
  /**
   * Wakes idle consumers of this process as soon as something is enqueued here, or, through the
   * store's append notifications, by any process.
   */
  private readonly enqueued = new EventEmitter().setMaxListeners(0);
  private stopWatching: Promise<(() => Promise<void>) | undefined> | undefined;
  private closed = false;

  constructor(
    private readonly store: InboxStore,
    private readonly options: InboxQueueOptions,
  ) {}

  async enqueue(batch: AcceptedBatch): Promise<string> {
    const depth = await this.recentDepth();
    if (depth.events > 0 && depth.events + batch.eventCount > this.options.maxEvents) {
      throw new AggregatorError('AGG_ERR_QUEUE_FULL', undefined, [], {
        retryAfterSeconds: this.options.retryAfterSeconds,
      });
    }
    return new Promise<string>((resolve, reject) => {
      this.pending.push({ batch, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /**
   * Group commit: requests that arrive while an insert is in flight are written together by the
   * next one, so under load the inbox takes one transaction for many requests. Each request is
   * still answered only after its own row is committed.
   */
  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const take = groupSize(this.pending, MAX_GROUP, (p) => bodyBytes(p.batch.body));
        await this.appendGroup(this.pending.splice(0, take));
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * Writes a group in one insert. Should the database refuse the data of one request, the group
   * is written again one request at a time, so only the request it refuses fails.
   */
  private async appendGroup(group: readonly PendingAppend[]): Promise<void> {
    try {
      const ids = await this.store.inbox.append(group.map((p) => p.batch));
      group.forEach((p, i) => p.resolve(ids[i] ?? ''));
      this.enqueued.emit('enqueued');
    } catch (error) {
      if (group.length > 1 && error instanceof StoreRejectedError) {
        for (const p of group) await this.appendGroup([p]);
        return;
      }
      for (const p of group) p.reject(error);
    }
  }

  private recentDepth(): Promise<QueueDepth> {
    const cached = this.cachedDepth;
    if (cached !== undefined && Date.now() - cached.at < DEPTH_CACHE_MS) {
      return Promise.resolve(cached.value);
    }
    return this.depth();
  }

  depth(): Promise<QueueDepth> {
    this.depthInFlight ??= this.store.inbox.depth().then(
      (value) => {
        this.cachedDepth = { value, at: Date.now() };
        this.depthInFlight = undefined;
        return value;
      },
      (error: unknown) => {
        this.depthInFlight = undefined;
        throw error;
      },
    );
    return this.depthInFlight;
  }

  receiptKey(messageId: string): string {
    return `inbox-${messageId}`;
  }

  isQueued(messageId: string): Promise<boolean> {
    return /^\d{1,18}$/.test(messageId)
      ? this.store.inbox.contains(messageId)
      : Promise.resolve(false);
  }

  createConsumer(name: string): QueueConsumer {
    this.stopWatching ??= this.watchAppends();
    return new InboxConsumer(name, this.store, this.options, this.enqueued);
  }

  /**
   * Listens for appends of every process, so a worker process is woken by an API process's
   * insert instead of finding it at its next poll. Should listening fail, workers only poll, as
   * before; it is tried again after a poll interval.
   */
  private async watchAppends(): Promise<(() => Promise<void>) | undefined> {
    while (!this.closed) {
      try {
        return await this.store.inbox.watchAppends(() => this.enqueued.emit('enqueued'));
      } catch (error) {
        this.options.onWarning?.('inbox: cannot listen for appends; workers poll', error);
        await sleep(this.options.blockMs);
      }
    }
    return undefined;
  }

  /** An applied inbox row is already gone; only receipts past their retention are forgotten. */
  async maintain(): Promise<void> {
    await this.store.pruneLedger(new Date(Date.now() - this.options.receiptRetentionMs));
  }

  durability(): Promise<DurabilityInfo> {
    return Promise.resolve({
      mode: `${this.store.kind}-transaction`,
      survivesServerCrash: true,
    });
  }

  ping(): Promise<void> {
    return this.store.ping();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.enqueued.emit('enqueued');
    const stop = await this.stopWatching;
    // Listening began while closing: the loop returned it; stop it all the same.
    await stop?.();
  }
}

class InboxConsumer implements QueueConsumer {
  private readonly shard: number;
  private idleMs = IDLE_POLL_MIN_MS;
  private closed = false;
  /** Set by every wake-up: one that came while the inbox was being read is not slept through. */
  private woken = false;

  constructor(
    readonly name: string,
    private readonly store: InboxStore,
    private readonly options: InboxQueueOptions,
    private readonly enqueued: EventEmitter,
  ) {
    this.shard = consumerShard(name);
    this.enqueued.on('enqueued', this.onWake);
  }

  private readonly onWake = (): void => {
    this.woken = true;
  };

  async processNext(signal: AbortSignal): Promise<ConsumeResult> {
    const inbox = this.store.inbox;
    this.woken = false;
    // The oldest messages, claimed and applied in one transaction; should the store refuse them,
    // the oldest are applied one at a time (peekIds) so only those it refuses are parked.
    const result = await applyWithPoisonPolicy<string>({
      applyAll: () =>
        tracedApplyLinkingResult(() => inbox.applyNext(this.options.batchMessages, this.shard)),
      messages: () => inbox.peekIds(this.options.batchMessages),
      applyOne: (id) => tracedApplyLinkingResult(() => inbox.applyOne(id, this.shard)),
      deadLetter: (id, reason) => inbox.deadLetter(id, reason),
      describe: (id) => `inbox message ${id}`,
      onWarning: this.options.onWarning,
    });
    if (result.messages > 0 || result.deadLettered > 0) {
      this.idleMs = IDLE_POLL_MIN_MS;
      return result;
    }
    await this.waitForWork(signal);
    return result;
  }

  /** Sleeps until something is enqueued (by any process) or the back-off poll interval passes. */
  private async waitForWork(signal: AbortSignal): Promise<void> {
    if (this.closed || signal.aborted) return;
    if (this.woken) {
      this.idleMs = IDLE_POLL_MIN_MS;
      return;
    }
    const controller = new AbortController();
    const onAbort = (): void => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const wake = (): void => controller.abort();
    this.enqueued.once('enqueued', wake);
    await sleep(this.idleMs, undefined, { signal: controller.signal }).catch(() => undefined);
    this.enqueued.off('enqueued', wake);
    signal.removeEventListener('abort', onAbort);
    this.idleMs = Math.min(this.idleMs * 2, this.options.blockMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.enqueued.off('enqueued', this.onWake);
  }
}
