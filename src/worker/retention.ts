/**
 * Storage upkeep and retention, run by every worker process (each step is safe concurrently):
 *
 * - partitions: the partitions of event time around now are created ahead of the events
 *   (PARTITION_INTERVAL), whether or not any retention is set;
 * - payloads, RETENTION_DAYS: partitions wholly older are dropped, their rows counted as
 *   `expired`; rows outside the partitions (the default partition: late, very old or far-future
 *   events) are deleted row by row in small transactions once older than RETENTION_DAYS;
 * - payloads, RETENTION_TOPIC_DAYS: a topic with its own retention is deleted row by row at its
 *   own bound; when it keeps longer than RETENTION_DAYS (or forever, 0) its rows are moved out of
 *   a partition being dropped into the default partition and kept;
 * - keys, KEY_RETENTION_DAYS: keys older than that whose payload is gone are forgotten, counted as
 *   `keys_expired`; a copy arriving after that is stored again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { RetentionStore } from '../store/store.js';

/** Events deleted per transaction. */
const BATCH = 1000;
const DAY_MS = 24 * 3600_000;

/** What one pass removed. */
export interface RetentionPass {
  /** Rows deleted (partitions dropped and row by row), each counted as expired. */
  payloads: number;
  /** Partitions dropped. */
  partitions: number;
  /** Keys forgotten. */
  keys: number;
}

export class Retention {
  constructor(
    private readonly store: RetentionStore,
    private readonly config: Pick<
      Config,
      'retentionDays' | 'retentionTopicDays' | 'keyRetentionDays'
    >,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when some topic has a retention: otherwise nothing is ever deleted. */
  get enabled(): boolean {
    return (
      this.config.retentionDays > 0 ||
      [...this.config.retentionTopicDays.values()].some((d) => d > 0)
    );
  }

  /** The partitions bound of the default retention, if any: none is created wholly before it. */
  private get partitionFloor(): Date | undefined {
    const days = this.config.retentionDays;
    return days > 0 ? new Date(this.now() - days * DAY_MS) : undefined;
  }

  /** Creates the partitions around now that are missing; resolves with their names. */
  async maintainPartitions(): Promise<string[]> {
    const created = await this.store.maintainPartitions(new Date(this.now()), {
      notBefore: this.partitionFloor,
    });
    if (created.length > 0) this.logger.info({ partitions: created }, 'created partitions');
    return created;
  }

  /** One pass of retention. */
  async run(signal?: AbortSignal): Promise<RetentionPass> {
    const days = this.config.retentionDays;
    const overrides = [...this.config.retentionTopicDays];
    // Topics whose own retention differs from RETENTION_DAYS are handled row by row.
    const own = overrides.filter(([, d]) => d !== days).map(([topic]) => topic);
    // Of those, the ones that keep their rows longer than the partitions live.
    const longer = overrides
      .filter(([, d]) => days > 0 && (d === 0 || d > days))
      .map(([topic]) => topic);
    let payloads = 0;
    let partitions = 0;
    if (days > 0) {
      const before = new Date(this.now() - days * DAY_MS);
      const dropped = await this.store.dropPartitions(before, longer);
      payloads += dropped.events;
      partitions = dropped.partitions;
      payloads += await this.inBatches(signal, () =>
        this.store.expireUnpartitioned(before, BATCH, own),
      );
      await this.inBatches(signal, () => this.store.forgetGranules(before, BATCH));
    }
    for (const [topic, topicDays] of overrides) {
      if (topicDays <= 0 || topicDays === days) continue;
      const before = new Date(this.now() - topicDays * DAY_MS);
      payloads += await this.inBatches(signal, () => this.store.expireEvents(topic, before, BATCH));
    }
    let keys = 0;
    if (this.config.keyRetentionDays > 0 && this.enabled) {
      const before = new Date(this.now() - this.config.keyRetentionDays * DAY_MS);
      // Keys of topics kept forever keep their payload forever: not worth looking at. Without
      // RETENTION_DAYS only the topics with a retention of their own can lose payloads.
      const topics =
        days > 0
          ? { except: overrides.filter(([, d]) => d === 0).map(([topic]) => topic) }
          : { only: overrides.filter(([, d]) => d > 0).map(([topic]) => topic) };
      keys = await this.inBatches(signal, () => this.store.forgetKeys(before, BATCH, topics));
    }
    if (payloads + keys > 0) {
      this.logger.info({ payloads, partitions, keys }, 'retention removed old payloads and keys');
    }
    return { payloads, partitions, keys };
  }

  /** Repeats `step` while it fills whole batches, pausing between them for the workers. */
  private async inBatches(signal: AbortSignal | undefined, step: () => Promise<number>) {
    let total = 0;
    for (;;) {
      if (signal?.aborted) return total;
      const done = await step();
      total += done;
      if (done < BATCH) return total;
      await sleep(5);
    }
  }
}
