/**
 * The Store contract: where events are kept exactly once, with the counters that describe them.
 * Two backends implement it with the same SQL (`sql/`): PostgreSQL (`postgres/`) and PGlite
 * (`pglite/`), which differ only in their driver. Every method that changes data does so in one
 * transaction. The contract is split by entity (apply, events, counters, conflicts, receipts, dead
 * letters, retention) so each caller names only the part it uses.
 */
import type { AcceptedBatch, StoredEvent } from '../log-event.js';
import type { FieldFilter } from '../search/field-filters.js';

/** One queue message: the events of one accepted publish request. */
export interface QueuedBatch {
  /** The queue's id of the message; the ledger remembers it so a redelivery is not counted twice. */
  readonly id: string;
  /** The request body as accepted (see AcceptedBatch), as text. */
  readonly body: string;
  /** The publish span's W3C traceparent, when tracing was on (tracing.ts). */
  readonly traceparent?: string | undefined;
}

export interface ApplyResult {
  /** Messages applied now (redelivered messages already in the ledger are not counted). */
  readonly messages: number;
  /** Events in the applied messages, duplicates included. */
  readonly received: number;
  /** Events stored for the first time. */
  readonly inserted: number;
  /** Events dropped because their key was already stored or repeated in the batch. */
  readonly duplicates: number;
  /** Duplicates whose timestamp, source or payload differ from the stored copy (dropped or rejected). */
  readonly conflicts: number;
  /** Conflicting duplicates refused (DUPLICATE_POLICY=reject-conflicts). */
  readonly rejected: number;
  /**
   * The W3C traceparents the applied messages carried, where the queue keeps them in the store
   * (the inbox), for the apply span's links (tracing.ts); absent elsewhere.
   */
  readonly traceparents?: readonly string[] | undefined;
}

/** What became of one event of an atomic publish with detail=true. */
export interface EventOutcome {
  /** Position in the request, from 0. */
  readonly index: number;
  readonly outcome: 'stored' | 'duplicate' | 'rejected';
  /** A duplicate whose timestamp, source or payload differ from the stored copy. */
  readonly conflict: boolean;
  /** For a duplicate or rejected event: when the stored copy was stored (ISO 8601 UTC). */
  readonly originalProcessedAt?: string | undefined;
}

/** Sums the outcomes of one message's events into its result. */
export function summariseOutcomes(outcomes: readonly EventOutcome[]): ApplyResult {
  let inserted = 0;
  let duplicates = 0;
  let conflicts = 0;
  let rejected = 0;
  for (const o of outcomes) {
    if (o.outcome === 'stored') inserted++;
    else if (o.outcome === 'duplicate') duplicates++;
    else rejected++;
    if (o.conflict) conflicts++;
  }
  return { messages: 1, received: outcomes.length, inserted, duplicates, conflicts, rejected };
}

export interface AtomicResult extends ApplyResult {
  /** Per event, when asked for. */
  readonly outcomes?: readonly EventOutcome[] | undefined;
}

/** A conflicting duplicate as kept for inspection. */
export interface StoredConflict {
  readonly id: number;
  readonly topic: string;
  readonly eventId: string;
  readonly stored: ConflictSide;
  readonly duplicate: ConflictSide;
  readonly rejected: boolean;
  /** Which of timestamp, source and payload differ. */
  readonly differs: readonly ('timestamp' | 'source' | 'payload')[];
  readonly detectedAt: string;
}

export interface ConflictSide {
  /** The 64-bit content hash, as decimal text. */
  readonly hash: string;
  readonly timestamp: string | null;
  readonly source: string | null;
  /** The first 200 characters of the payload as JSON. */
  readonly payloadStart: string | null;
}

/** Deduplication figures of one source within a topic. */
export interface DedupStats {
  readonly source: string;
  readonly events: number;
  readonly unique: number;
  readonly duplicates: number;
  readonly conflicts: number;
  /** Delay between the stored copy and a later one, ms; the median is within 19%. */
  readonly medianDelayMs: number | null;
  readonly maxDelayMs: number;
}

/** One equation /stats/verify recomputes from the tables. */
export interface VerifyCheck {
  readonly name: string;
  readonly expected: number;
  readonly actual: number;
  readonly difference: number;
}

/** How a duplicate that differs from the stored copy is treated. */
export type DuplicatePolicy = 'first-wins' | 'reject-conflicts';

/** Which stored events a listing or a histogram covers. */
export interface EventFilter {
  readonly topic?: string | undefined;
  readonly source?: string | undefined;
  /** Event time bounds: since inclusive, until exclusive (ISO 8601). */
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  /** Search terms (search-terms.ts): each must appear in the event's search text, any case. */
  readonly terms?: readonly string[] | undefined;
  /** Exact JSON values at payload paths (field-filters.ts). */
  readonly fields?: readonly FieldFilter[] | undefined;
}

/** Bucket widths of GET /events/histogram. */
export const HISTOGRAM_INTERVALS = {
  '1m': 60_000,
  '5m': 300_000,
  '1h': 3_600_000,
  '1d': 86_400_000,
};
export type HistogramInterval = keyof typeof HISTOGRAM_INTERVALS;

/** Events per bucket of event time, over [since, until). */
export interface HistogramQuery extends EventFilter {
  readonly since: string;
  readonly until: string;
  readonly interval: HistogramInterval;
}

/** A bucket holding at least one event: its start (ISO 8601 UTC, aligned to the Unix epoch). */
export interface HistogramBucket {
  readonly start: string;
  readonly count: number;
}

export interface EventQuery extends EventFilter {
  /** By event time, then id; default newest first. */
  readonly order?: 'asc' | 'desc';
  /** Keyset cursor: only events after this (timestamp, id) in the chosen order. */
  readonly after?: { readonly timestamp: string; readonly id: number } | undefined;
  readonly limit: number;
  readonly offset: number;
}

/** Per-topic figures for GET /topics. */
export interface TopicSummary {
  readonly topic: string;
  readonly received: number;
  readonly uniqueProcessed: number;
  readonly duplicateDropped: number;
  readonly conflictingDuplicates: number;
  readonly rejected: number;
  readonly expired: number;
  /** Latest event time stored, ISO 8601 UTC; undefined when none is stored. */
  readonly lastEventAt: string | undefined;
}

/** A subscription to newly stored events (LISTEN on the insert announcements). */
export interface InsertWatcher {
  /** A committed transaction inserted events with ids in [from, to] (and maybe others too). */
  onRange(from: number, to: number): void;
  /** Announcements may have been missed (the connection was lost); catch up from the data. */
  onResumed(): void;
}

export interface Counters {
  readonly received: number;
  readonly uniqueProcessed: number;
  readonly duplicateDropped: number;
  /** Duplicates that differ from the stored copy, dropped or rejected. */
  readonly conflictingDuplicates: number;
  /** Conflicting duplicates refused under DUPLICATE_POLICY=reject-conflicts. */
  readonly rejected: number;
  /** Stored events whose payload row retention deleted (they stay counted in the above). */
  readonly expired: number;
  /** Of those, the ones whose key was forgotten too (KEY_RETENTION_DAYS). */
  readonly keysExpired: number;
  readonly topics: readonly string[];
}

export interface DeadLetter {
  readonly messageId: string;
  /** The refused message's body as text. */
  readonly body: string;
  readonly reason: string;
  /** Events in it, as the queue counted them. */
  readonly eventCount: number;
}

/** A parked message as listed for inspection. */
export interface StoredDeadLetter extends DeadLetter {
  /** ISO 8601 UTC, when it was parked. */
  readonly failedAt: string;
}

/** The store-backed queue: an inbox table drained by the same transaction that applies it. */
export interface Inbox {
  /**
   * Durably records messages in one transaction; resolves with their ids, in order, once
   * committed.
   */
  append(batches: readonly AcceptedBatch[]): Promise<string[]>;
  /** Messages and events waiting in the inbox. */
  depth(): Promise<{ messages: number; events: number }>;
  /**
   * Claims up to `maxMessages` of the oldest messages no other worker holds, applies them and
   * deletes them, in one transaction. Resolves with zero messages when the inbox is empty.
   */
  applyNext(maxMessages: number, shard: number): Promise<ApplyResult>;
  /** Ids of the oldest messages, without applying them, to isolate a poison message. */
  peekIds(maxMessages: number): Promise<string[]>;
  /** Applies one message by id and deletes it in one transaction; zero messages if it is gone. */
  applyOne(id: string, shard: number): Promise<ApplyResult>;
  /** Moves one message to the dead-letter table with the reason, in one transaction. */
  deadLetter(id: string, reason: string): Promise<void>;
  /** Whether message `id` is still in the inbox. */
  contains(id: string): Promise<boolean>;
  /**
   * Calls `onAppend` when any process appended messages (PostgreSQL LISTEN/NOTIFY), until the
   * returned function is called; wakes idle workers of other processes. A backend with a single
   * process reports nothing (its queue wakes its own workers).
   */
  watchAppends(onAppend: () => void): Promise<() => Promise<void>>;
}

/**
 * Applying: the only writes of events and counters. Queue consumers use `applyBatches`, atomic
 * ingestion routes `applyAccepted`.
 */
export interface EventApplier {
  /**
   * Applies queue messages in one transaction: messages already in the ledger are skipped, the
   * events of the rest are deduplicated and stored, the counters move by exactly what happened.
   * `shard` spreads counter updates so concurrent workers do not queue on one row (see
   * counter-shards.ts: consumerShard).
   */
  applyBatches(batches: readonly QueuedBatch[], shard: number): Promise<ApplyResult>;
  /**
   * Applies an accepted batch straight away (atomic publish): one transaction. With the policy
   * reject-conflicts, a batch holding a conflicting duplicate is rolled back whole and
   * ConflictRejectedError is thrown. `shard`: counter-shards.ts nextAtomicShard().
   */
  applyAccepted(
    batch: AcceptedBatch,
    shard: number,
    options?: { detail?: boolean },
  ): Promise<AtomicResult>;
}

/** Messages the database refused, parked so they no longer block the messages behind them. */
export interface DeadLetterStore {
  /** Parks a message; a second park of the same message id is ignored. */
  deadLetter(letter: DeadLetter): Promise<void>;
  deadLetterCount(): Promise<number>;
  /** Events in the parked messages, as the queue counted them. */
  deadLetteredEvents(): Promise<number>;
  /** Parked messages, most recent first. */
  listDeadLetters(query: { limit: number; offset: number }): Promise<StoredDeadLetter[]>;
  /** Discards a parked message after inspection; false if there is none with this id. */
  deleteDeadLetter(messageId: string): Promise<boolean>;
}

/** Reading stored events (expired ones are never listed). */
export interface EventReader {
  /** Stored events, newest event time first unless `order` says otherwise. */
  listEvents(query: EventQuery): Promise<StoredEvent[]>;
  /** Stored events with `from <= id <= to`, by id. */
  eventsInIdRange(from: number, to: number): Promise<StoredEvent[]>;
  /** Up to `limit` stored events with id above `after`, by id, of `topics` if given. */
  eventsAfterId(
    after: number,
    topics: readonly string[] | undefined,
    limit: number,
  ): Promise<StoredEvent[]>;
  /** The highest id stored, 0 if none. */
  lastEventId(): Promise<number>;
  /** Reports each committed insert of events until the returned function is called. */
  watchInserts(watcher: InsertWatcher): Promise<() => Promise<void>>;
  /** Rows stored (payload not expired), in all topics or in one. */
  countEvents(topic?: string): Promise<number>;
  /**
   * Events per bucket of event time, exactly the rows listEvents would return for the same
   * filter; buckets without events are left out, in time order.
   */
  histogram(query: HistogramQuery): Promise<HistogramBucket[]>;
}

/** The counters and the figures derived from them. */
export interface CounterReader {
  counters(): Promise<Counters>;
  topicSummaries(): Promise<TopicSummary[]>;
  dedupStats(topic: string): Promise<DedupStats[]>;
  /** Recomputes the counting equations from the tables. */
  verify(): Promise<VerifyCheck[]>;
}

/** Conflicting duplicates: kept for inspection, some settled after the fact. */
export interface ConflictStore {
  /** Compares up to `limit` duplicates dropped while their stored copy was not yet visible. */
  resolvePendingConflicts(limit: number): Promise<number>;
  listConflicts(query: {
    topic?: string | undefined;
    limit: number;
    beforeId?: number | undefined;
  }): Promise<StoredConflict[]>;
}

/** The ledger of applied queue messages and their receipts. */
export interface ReceiptStore {
  /** What became of each event of an applied queue message, if its receipt is still kept. */
  receipt(messageId: string): Promise<EventOutcome[] | undefined>;
  /** Forgets ledger rows written before `before`; the caller guarantees those messages are settled. */
  pruneLedger(before: Date): Promise<number>;
}

/**
 * Storage upkeep and retention (docs/storage.md): events live in partitions of event time, which
 * retention drops whole; rows outside them (the default partition) and topics with their own
 * retention are deleted row by row; keys are forgotten later, once their payload is gone.
 */
export interface RetentionStore {
  /**
   * Creates the partitions around `now` that are missing (never one wholly before `notBefore`),
   * moving their rows out of the default partition; with `split`, also the past partitions the
   * default holds rows of (start-up). Resolves with the names created. Safe from many processes.
   */
  maintainPartitions(
    now: Date,
    options?: { notBefore?: Date | undefined; split?: boolean },
  ): Promise<string[]>;
  /**
   * Drops every partition whose whole range of event time is before `before`: its rows are counted
   * as expired per topic, in the dropping transaction; the rows of `keepTopics` are moved to the
   * default partition instead (their topic keeps them longer).
   */
  dropPartitions(
    before: Date,
    keepTopics: readonly string[],
  ): Promise<{ partitions: number; events: number; kept: number; exclusiveMs: number }>;
  /**
   * Deletes up to `limit` events of `topic` (any partition) whose event time is before `before`,
   * oldest first, and counts them as expired, in one transaction. Rows other transactions hold
   * are skipped. Their keys stay (a late copy is still a duplicate).
   */
  expireEvents(topic: string, before: Date, limit: number): Promise<number>;
  /**
   * The same for the rows of the default partition (events outside every partition), of every
   * topic but `exceptTopics`; counted per topic.
   */
  expireUnpartitioned(
    before: Date,
    limit: number,
    exceptTopics: readonly string[],
  ): Promise<number>;
  /**
   * Deletes up to `limit` search granules (docs/search.md) wholly before `before` whose rows are
   * all gone; resolves with how many. Nothing is counted: granules only narrow searches.
   */
  forgetGranules(before: Date, limit: number): Promise<number>;
  /**
   * Forgets up to `limit` keys with event time before `before` whose payload row is gone, counted
   * as keys_expired: a later copy is stored again. `topics` narrows the keys looked at: never those
   * of `except`, and only those of `only` when given (topics whose payloads can expire).
   */
  forgetKeys(
    before: Date,
    limit: number,
    topics?: { except?: readonly string[]; only?: readonly string[] },
  ): Promise<number>;
}

/** Which backend, whether it answers, and its end. */
export interface StoreConnection {
  readonly kind: 'postgres' | 'pglite';
  /** Resolves when the database answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The whole Store: every part above, plus the inbox the store-backed queue keeps in it. Code that
 * needs only a part (a route, a queue, a background task) asks for that part.
 */
export interface Store
  extends
    EventApplier,
    DeadLetterStore,
    EventReader,
    CounterReader,
    ConflictStore,
    ReceiptStore,
    RetentionStore,
    StoreConnection {
  readonly inbox: Inbox;
}
