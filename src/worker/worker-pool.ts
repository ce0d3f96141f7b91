/**
 * The workers of one process: `concurrency` loops of read → apply → acknowledge, each its own
 * consumer of the shared queue, plus one upkeep loop. Failures back off exponentially and never
 * end a loop; `stop` lets each loop finish the batch in hand, within a time limit.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ConsumeResult, Queue, QueueConsumer } from '../queue/queue.js';

export interface WorkerPoolOptions {
  readonly concurrency: number;
  /** Unique per process; consumer names are derived from it. */
  readonly instanceId: string;
  readonly maintenanceIntervalMs?: number;
  /** Background tasks run every `intervalMs` beside the loops (retention). */
  readonly periodic?: readonly PeriodicTask[];
  /** Called after every applied batch (metrics). */
  readonly onBatch?: (result: ConsumeResult, durationMs: number) => void;
}

export interface PeriodicTask {
  readonly name: string;
  readonly intervalMs: number;
  run(signal: AbortSignal): Promise<unknown>;
}

const MAX_BACKOFF_MS = 5000;

export class WorkerPool {
  private readonly controller = new AbortController();
  private loops: Promise<void>[] = [];
  private active = 0;

  constructor(
    private readonly queue: Queue,
    private readonly logger: Logger,
    private readonly options: WorkerPoolOptions,
  ) {}

  get running(): number {
    return this.active;
  }

  start(): void {
    if (this.loops.length > 0) return;
    for (let i = 0; i < this.options.concurrency; i++) {
      const consumer = this.queue.createConsumer(`${this.options.instanceId}-${i}`);
      this.loops.push(this.consume(consumer));
    }
    this.loops.push(
      this.every({
        name: 'queue upkeep',
        intervalMs: this.options.maintenanceIntervalMs ?? 10_000,
        run: () => this.queue.maintain(),
      }),
    );
    for (const task of this.options.periodic ?? []) this.loops.push(this.every(task));
  }

  private async consume(consumer: QueueConsumer): Promise<void> {
    const signal = this.controller.signal;
    const log = this.logger.child({ consumer: consumer.name });
    this.active++;
    let backoff = 0;
    try {
      while (!signal.aborted) {
        const started = performance.now();
        try {
          const result = await consumer.processNext(signal);
          if (backoff > 0) log.info('worker recovered');
          backoff = 0;
          if (result.messages > 0 || result.deadLettered > 0) {
            const ms = performance.now() - started;
            this.options.onBatch?.(result, ms);
            log.debug({ ...result, ms: Math.round(ms) }, 'batch applied');
          }
        } catch (error) {
          backoff = Math.min(backoff === 0 ? 100 : backoff * 2, MAX_BACKOFF_MS);
          log.warn({ err: error, retryInMs: backoff }, 'batch failed; it stays queued');
          await sleep(backoff, undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      this.active--;
      await consumer.close();
    }
  }

  private async every(task: PeriodicTask): Promise<void> {
    const signal = this.controller.signal;
    while (!signal.aborted) {
      await sleep(task.intervalMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) break;
      try {
        await task.run(signal);
      } catch (error) {
        this.logger.warn({ err: error }, `${task.name} failed; will try again`);
      }
    }
  }

  /** Stops taking new batches and waits for the ones in hand, at most `timeoutMs`. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.controller.abort();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const finished = Promise.all(this.loops).then(() => true as const);
    const clean = await Promise.race([finished, timedOut]);
    clearTimeout(timer);
    return clean;
  }
}
