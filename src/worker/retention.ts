/**
 * Retention: deletes events whose event time is older than RETENTION_DAYS (or their topic's
 * RETENTION_TOPIC_DAYS), in small transactions so it never holds many rows or blocks the workers
 * for long, and counts them as `expired`. Every worker process may run it: rows another one is
 * deleting are skipped. A duplicate that arrives after its original was deleted is stored again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Store } from '../store/store.js';

/** Events deleted per transaction. */
const BATCH = 1000;
const DAY_MS = 24 * 3600_000;

export class Retention {
  constructor(
    private readonly store: Store,
    private readonly config: Pick<Config, 'retentionDays' | 'retentionTopicDays'>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when some topic has a retention: otherwise nothing ever runs. */
  get enabled(): boolean {
    return (
      this.config.retentionDays > 0 ||
      [...this.config.retentionTopicDays.values()].some((d) => d > 0)
    );
  }

  /** One pass over every topic; resolves with the number of events deleted. */
  async run(signal?: AbortSignal): Promise<number> {
    let total = 0;
    for (const topic of (await this.store.counters()).topics) {
      const days = this.config.retentionTopicDays.get(topic) ?? this.config.retentionDays;
      if (days <= 0) continue;
      const before = new Date(this.now() - days * DAY_MS);
      let deleted: number;
      do {
        if (signal?.aborted) return total;
        deleted = await this.store.expireEvents(topic, before, BATCH);
        total += deleted;
        // Let the workers' transactions in between batches.
        if (deleted === BATCH) await sleep(5);
      } while (deleted === BATCH);
    }
    if (total > 0) this.logger.info({ expired: total }, 'retention deleted old events');
    return total;
  }
}
