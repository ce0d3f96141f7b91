/**
 * Prometheus metrics (prom-client). Two kinds:
 *
 * - per process: Node.js process metrics, the HTTP request histogram, the batch apply histogram
 *   and the events accepted. Worker processes forked by the API process send theirs over the
 *   IPC channel when scraped, and they are added up (`AggregatorRegistry.aggregate`);
 * - of the whole deployment: the event counters, dead letters and queue depth, read at scrape time
 *   from the same rows and keys as `/stats` and `/queue/stats`, so every API process reports the
 *   same exact totals and they always equal `/stats` (the duplicates: its `duplicate_dropped +
 *   rejected`).
 *
 * A Prometheus `_total` never decreases (a decrease reads as a restart and spoils `rate()`), so
 * only what only grows is exported as one: a figure that can go down (dead letters, which an
 * operator deletes) is a gauge, and the duplicates count those later refused as well (below).
 */
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type MetricObjectWithValues,
  type PrometheusContentType,
  type MetricValue,
} from 'prom-client';
import type { Queue } from './queue/queue.js';
import type { CounterReader, DeadLetterStore } from './store/store.js';

/** The metrics of one process's registry, as sent between processes. */
export type ProcessMetrics = MetricObjectWithValues<MetricValue<string>>[];

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class ProcessMetricsRegistry {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'aggregator_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status, and how long they took',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly applyDuration = new Histogram({
    name: 'aggregator_batch_apply_duration_seconds',
    help: 'Time a worker took to read, apply and acknowledge one batch of queue messages',
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });
  readonly batchesApplied = new Counter({
    name: 'aggregator_batches_applied_total',
    help: 'Batches of queue messages applied by the workers',
    registers: [this.registry],
  });
  readonly liveSubscribers = new Gauge({
    name: 'aggregator_live_subscribers',
    help: 'Open GET /events/stream connections',
    registers: [this.registry],
  });
  readonly eventsAccepted = new Counter({
    name: 'aggregator_events_accepted_total',
    help: 'Events accepted by POST /publish (queued, or stored at once with atomic=true)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  snapshot(): Promise<ProcessMetrics> {
    return this.registry.getMetricsAsJSON();
  }
}

/** The deployment-wide metrics, read from the store and the queue when scraped. */
export class DeploymentMetrics {
  private readonly registry = new Registry();
  private readonly received = this.counter(
    'aggregator_events_received_total',
    'Events applied by the workers, duplicates included (= /stats received)',
  );
  private readonly unique = this.counter(
    'aggregator_events_unique_total',
    'Events stored for the first time (= /stats unique_processed)',
  );
  private readonly duplicate = this.counter(
    'aggregator_events_duplicate_total',
    'Events repeating a stored (topic, event_id), dropped or refused (= /stats duplicate_dropped + rejected)',
  );
  private readonly conflicting = this.counter(
    'aggregator_events_conflicting_duplicate_total',
    'Duplicates whose timestamp, source or payload differ from the stored event',
  );
  private readonly rejected = this.counter(
    'aggregator_events_rejected_total',
    'Conflicting duplicates refused (DUPLICATE_POLICY=reject-conflicts)',
  );
  private readonly expired = this.counter(
    'aggregator_events_expired_total',
    'Stored events deleted by retention (RETENTION_DAYS)',
  );
  private readonly deadLetters = new Gauge({
    name: 'aggregator_dead_letters',
    help: 'Queue messages the database refused, parked in the dead_letters table (deleting one lowers it)',
    registers: [this.registry],
  });
  private readonly queueDepth = new Gauge({
    name: 'aggregator_queue_depth',
    help: 'Events accepted but not yet applied (= /queue/stats queue_size)',
    registers: [this.registry],
  });
  private readonly queueMessages = new Gauge({
    name: 'aggregator_queue_messages',
    help: 'Publish requests waiting in the queue',
    registers: [this.registry],
  });
  private readonly up = new Gauge({
    name: 'aggregator_backend_up',
    help: 'Whether the last scrape could read the backend (1) or not (0)',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });

  constructor(
    private readonly store: CounterReader & DeadLetterStore,
    private readonly queue: Queue,
  ) {}

  private counter(name: string, help: string): Counter {
    return new Counter({ name, help, registers: [this.registry] });
  }

  /**
   * Reads the current values. A backend that does not answer keeps its last values and reports
   * `aggregator_backend_up 0`, so the process metrics are still scraped while it is down.
   */
  async refresh(): Promise<Registry> {
    const [store, queue] = await Promise.allSettled([
      Promise.all([this.store.counters(), this.store.deadLetterCount()]),
      this.queue.depth(),
    ]);
    if (store.status === 'fulfilled') {
      const [counters, deadLetters] = store.value;
      set(this.received, counters.received);
      set(this.unique, counters.uniqueProcessed);
      // A duplicate found to conflict only after it was dropped moves from /stats
      // duplicate_dropped to rejected: each alone may go down, their sum never does.
      set(this.duplicate, counters.duplicateDropped + counters.rejected);
      set(this.expired, counters.expired);
      set(this.conflicting, counters.conflictingDuplicates);
      set(this.rejected, counters.rejected);
      this.deadLetters.set(deadLetters);
    }
    this.up.set({ backend: 'store' }, store.status === 'fulfilled' ? 1 : 0);
    if (queue.status === 'fulfilled') {
      this.queueDepth.set(queue.value.events);
      this.queueMessages.set(queue.value.messages);
    }
    this.up.set({ backend: 'queue' }, queue.status === 'fulfilled' ? 1 : 0);
    return this.registry;
  }
}

function set(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}

/** The exposition text: this process's metrics plus its forked workers', and the deployment's. */
export async function renderMetrics(
  own: ProcessMetricsRegistry,
  children: readonly ProcessMetrics[],
  deployment: DeploymentMetrics,
): Promise<{ contentType: string; text: string }> {
  const processes: Registry =
    children.length === 0
      ? own.registry
      : AggregatorRegistry.aggregate<PrometheusContentType>([await own.snapshot(), ...children]);
  const merged = Registry.merge([processes, await deployment.refresh()]);
  return { contentType: merged.contentType, text: await merged.metrics() };
}
