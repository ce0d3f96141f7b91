/**
 * The Queue contract: how accepted publish requests wait for the workers. One message per request,
 * never one per event. Two backends: Redis Streams (`redis-streams/`) and an inbox table in the
 * store (`inbox/`). A message is removed only after the store committed it, so a worker killed at
 * any instant loses nothing; the store's ledger makes a redelivered message count once.
 */
import type { AcceptedBatch } from '../log-event.js';
import type { ApplyResult } from '../store/store.js';

export type QueueKind = 'redis-streams' | 'redis-cluster' | 'inbox' | 'jetstream';

export interface QueueDepth {
  /** Messages (publish requests) accepted but not yet applied. */
  readonly messages: number;
  /** Events in those messages. */
  readonly events: number;
}

export interface ConsumeResult extends ApplyResult {
  /** Messages the store refused and that were moved to the dead-letter table. */
  readonly deadLettered: number;
}

export interface QueueConsumer {
  /** The consumer's name, unique among the workers sharing the queue. */
  readonly name: string;
  /**
   * Takes up to the configured number of messages (first those another worker left unfinished
   * for too long), stores them, then acknowledges them. Waits a short while when nothing is
   * waiting and resolves with zero messages. A message the store refuses goes to the dead-letter
   * table; on any other failure nothing is acknowledged and the promise rejects. Aborting
   * `signal` cuts a wait short; a batch already read is still applied and acknowledged.
   */
  processNext(signal: AbortSignal): Promise<ConsumeResult>;
  close(): Promise<void>;
}

export interface DurabilityInfo {
  /** Whether an acknowledged enqueue survives a crash of the queue's server, and how. */
  readonly mode: string;
  readonly survivesServerCrash: boolean;
}

export interface Queue {
  readonly kind: QueueKind;
  /**
   * The queue's Redis client (an ioredis Redis or Cluster), when it has one: the API keeps state
   * every process must share there (the rate limit). Undefined for the other backends.
   */
  readonly sharedRedis?: unknown;
  /**
   * Durably records one message holding an accepted batch; resolves with the message id once it
   * would survive a crash of this process. Rejects with AGG_ERR_QUEUE_FULL past the configured
   * depth.
   */
  enqueue(batch: AcceptedBatch): Promise<string>;
  /** What is accepted and not yet applied. */
  depth(): Promise<QueueDepth>;
  /** The id the store keeps the receipt of message `messageId` (as enqueue returned it) under. */
  receiptKey(messageId: string): string;
  /** Whether message `messageId` still waits in the queue (not applied yet). */
  isQueued(messageId: string): Promise<boolean>;
  /** A consumer for one worker loop; `name` must be unique among live workers. */
  createConsumer(name: string): QueueConsumer;
  /** Background upkeep: forget settled messages, release what dead workers left behind. */
  maintain(): Promise<void>;
  durability(): Promise<DurabilityInfo>;
  /** Resolves when the queue's server answers; rejects with QueueUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const EMPTY_RESULT: ConsumeResult = Object.freeze({
  messages: 0,
  received: 0,
  inserted: 0,
  duplicates: 0,
  conflicts: 0,
  rejected: 0,
  deadLettered: 0,
});

/** Adds two apply results. */
export function addResults(
  a: ConsumeResult,
  b: ApplyResult & { deadLettered?: number },
): ConsumeResult {
  return {
    messages: a.messages + b.messages,
    received: a.received + b.received,
    inserted: a.inserted + b.inserted,
    duplicates: a.duplicates + b.duplicates,
    conflicts: a.conflicts + b.conflicts,
    rejected: a.rejected + b.rejected,
    deadLettered: a.deadLettered + (b.deadLettered ?? 0),
  };
}

/**
 * Most body bytes written or applied by one statement. A request may be up to MAX_BODY_BYTES, so
 * a count limit alone could build a statement of hundreds of megabytes.
 */
export const MAX_GROUP_BYTES = 8 * 1024 * 1024;

/** A queued body's size as groupSize counts it: UTF-8 bytes, whether it is text or a Buffer. */
export function bodyBytes(body: string | Buffer): number {
  return Buffer.byteLength(body);
}

/**
 * How many of `items`, from the front, fit in one statement: at most `maxCount` and
 * MAX_GROUP_BYTES, and always at least one, however large.
 */
export function groupSize<T>(
  items: readonly T[],
  maxCount: number,
  bytesOf: (item: T) => number,
): number {
  let take = 0;
  let bytes = 0;
  while (take < items.length && take < maxCount) {
    bytes += bytesOf(items[take] as T);
    if (take > 0 && bytes > MAX_GROUP_BYTES) break;
    take++;
  }
  return take;
}
