/**
 * Retention, in two steps, in small transactions so it never holds many rows or blocks the
 * workers for long; every worker process may run it (rows another one holds are skipped):
 *
 * - payloads: events whose event time is older than RETENTION_DAYS (or their topic's
 *   RETENTION_TOPIC_DAYS) lose their payload and are no longer listed, counted as `expired`; the
 *   row stays as the memory of its key, so a very late copy is still a duplicate;
 * - keys: with KEY_RETENTION_DAYS, those rows are deleted once their event time is older than
 *   that too, counted as `keys_expired`; a copy arriving after that is stored again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { CounterReader, RetentionStore } from '../store/store.js';

/** Events deleted per transaction. */
const BATCH = 1000;
const DAY_MS = 24 * 3600_000;

export class Retention {
  constructor(
    private readonly store: CounterReader & RetentionStore,
    private readonly config: Pick<
      Config,
      'retentionDays' | 'retentionTopicDays' | 'keyRetentionDays'
    >,
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

  /** One pass; resolves with the payloads and the keys removed. */
  async run(signal?: AbortSignal): Promise<{ payloads: number; keys: number }> {
    let payloads = 0;
    for (const topic of (await this.store.counters()).topics) {
      const days = this.config.retentionTopicDays.get(topic) ?? this.config.retentionDays;
      if (days <= 0) continue;
      const before = new Date(this.now() - days * DAY_MS);
      payloads += await this.inBatches(signal, () => this.store.expireEvents(topic, before, BATCH));
    }
    let keys = 0;
    if (this.config.keyRetentionDays > 0) {
      const before = new Date(this.now() - this.config.keyRetentionDays * DAY_MS);
      keys = await this.inBatches(signal, () => this.store.forgetKeys(before, BATCH));
    }
    if (payloads + keys > 0) {
      this.logger.info({ payloads, keys }, 'retention removed old payloads and keys');
    }
    return { payloads, keys };
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
