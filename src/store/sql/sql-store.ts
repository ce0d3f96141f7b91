/**
 * The Store over PostgreSQL SQL, for both backends: PostgreSQL through a `pg` pool and PGlite
 * in-process; only the SqlDriver differs. Each member hands over to the module of its concern
 * (apply, events, counters, conflicts, receipts, dead letters, retention, inbox). A failed read
 * never answers as a refused write (sql-errors.ts: reading).
 */
import type { AcceptedBatch, StoredEvent } from '../../log-event.js';
import type { SqlDriver } from '../sql-driver.js';
import { reading } from '../sql-errors.js';
import type {
  ApplyResult,
  AtomicResult,
  Counters,
  DeadLetter,
  DedupStats,
  DuplicatePolicy,
  EventOutcome,
  EventQuery,
  HistogramBucket,
  HistogramQuery,
  Inbox,
  InsertWatcher,
  QueuedBatch,
  Store,
  StoredConflict,
  StoredDeadLetter,
  TopicSummary,
  VerifyCheck,
} from '../store.js';
import { SqlApplier } from './apply.js';
import * as conflicts from './conflicts.js';
import * as counters from './counters.js';
import * as deadLetters from './dead-letters.js';
import { dedupStats } from './dedup-stats.js';
import * as events from './events.js';
import { histogram } from './histogram.js';
import { SqlInbox } from './inbox.js';
import * as receipts from './receipts.js';
import * as partitions from './partitions.js';
import type { PartitionInterval } from './partitions.js';
import * as retention from './retention.js';
import type { KeyTopics } from './retention.js';
import { verify } from './verify.js';

export class SqlStore implements Store {
  readonly inbox: Inbox;
  private readonly applier: SqlApplier;
  private readonly partitionInterval: PartitionInterval;

  constructor(
    private readonly driver: SqlDriver,
    readonly kind: 'postgres' | 'pglite' = 'postgres',
    options: { duplicatePolicy?: DuplicatePolicy; partitionInterval?: PartitionInterval } = {},
  ) {
    this.partitionInterval = options.partitionInterval ?? 'day';
    this.applier = new SqlApplier(driver, options.duplicatePolicy);
    this.inbox = new SqlInbox(driver, this.applier, { wakeOtherProcesses: kind === 'postgres' });
  }

  applyBatches(batches: readonly QueuedBatch[], shard: number): Promise<ApplyResult> {
    return this.applier.applyBatches(batches, shard);
  }

  applyAccepted(
    batch: AcceptedBatch,
    shard: number,
    options: { detail?: boolean } = {},
  ): Promise<AtomicResult> {
    return this.applier.applyAccepted(batch, shard, options);
  }

  deadLetter(letter: DeadLetter): Promise<void> {
    return deadLetters.insertDeadLetter(this.driver, letter);
  }

  deadLetterCount(): Promise<number> {
    return reading(deadLetters.countDeadLetters(this.driver));
  }

  deadLetteredEvents(): Promise<number> {
    return reading(deadLetters.deadLetteredEvents(this.driver));
  }

  listDeadLetters(query: { limit: number; offset: number }): Promise<StoredDeadLetter[]> {
    return reading(deadLetters.listDeadLetters(this.driver, query));
  }

  deleteDeadLetter(messageId: string): Promise<boolean> {
    return deadLetters.deleteDeadLetter(this.driver, messageId);
  }

  listEvents(query: EventQuery): Promise<StoredEvent[]> {
    return reading(events.listEvents(this.driver, query));
  }

  histogram(query: HistogramQuery): Promise<HistogramBucket[]> {
    return reading(histogram(this.driver, query));
  }

  eventsInIdRange(from: number, to: number): Promise<StoredEvent[]> {
    return reading(events.eventsInIdRange(this.driver, from, to));
  }

  eventsAfterId(
    after: number,
    topics: readonly string[] | undefined,
    limit: number,
  ): Promise<StoredEvent[]> {
    return reading(events.eventsAfterId(this.driver, after, topics, limit));
  }

  lastEventId(): Promise<number> {
    return reading(events.lastEventId(this.driver));
  }

  watchInserts(watcher: InsertWatcher): Promise<() => Promise<void>> {
    return events.watchInserts(this.driver, watcher);
  }

  topicSummaries(): Promise<TopicSummary[]> {
    return reading(counters.topicSummaries(this.driver));
  }

  counters(): Promise<Counters> {
    return reading(counters.counters(this.driver));
  }

  countEvents(topic?: string): Promise<number> {
    return reading(events.countEvents(this.driver, topic));
  }

  maintainPartitions(
    now: Date,
    options: { notBefore?: Date | undefined; split?: boolean } = {},
  ): Promise<string[]> {
    return partitions.createPartitions(
      this.driver,
      { interval: this.partitionInterval, ...options },
      now,
    );
  }

  dropPartitions(
    before: Date,
    keepTopics: readonly string[],
  ): Promise<{ partitions: number; events: number; kept: number; exclusiveMs: number }> {
    return partitions.dropPartitions(this.driver, before, keepTopics);
  }

  expireEvents(topic: string, before: Date, limit: number): Promise<number> {
    return retention.expireEvents(this.driver, topic, before, limit);
  }

  expireUnpartitioned(
    before: Date,
    limit: number,
    exceptTopics: readonly string[],
  ): Promise<number> {
    return retention.expireUnpartitioned(this.driver, before, limit, exceptTopics);
  }

  forgetGranules(before: Date, limit: number): Promise<number> {
    return retention.forgetGranules(this.driver, before, limit);
  }

  forgetKeys(before: Date, limit: number, topics: KeyTopics = {}): Promise<number> {
    return retention.forgetKeys(this.driver, before, limit, topics);
  }

  resolvePendingConflicts(limit: number): Promise<number> {
    return conflicts.resolvePendingConflicts(this.driver, limit);
  }

  listConflicts(query: {
    topic?: string | undefined;
    limit: number;
    beforeId?: number | undefined;
  }): Promise<StoredConflict[]> {
    return reading(conflicts.listConflicts(this.driver, query));
  }

  dedupStats(topic: string): Promise<DedupStats[]> {
    return reading(dedupStats(this.driver, topic));
  }

  receipt(messageId: string): Promise<EventOutcome[] | undefined> {
    return reading(receipts.receipt(this.driver, messageId));
  }

  pruneLedger(before: Date): Promise<number> {
    return receipts.pruneLedger(this.driver, before);
  }

  verify(): Promise<VerifyCheck[]> {
    return reading(verify(this.driver));
  }

  async ping(): Promise<void> {
    await this.driver.query('SELECT 1');
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
