/**
 * Composes the service from its configuration: store, queue, the API and the workers this role
 * runs, and the orderly stop (stop accepting → finish the batches in hand → close connections).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { buildServer } from './http/server.js';
import { ProcessMetricsRegistry } from './metrics.js';
import { createQueue } from './queue/create-queue.js';
import type { Queue } from './queue/queue.js';
import { createStore } from './store/create-store.js';
import type { Store } from './store/store.js';
import { Retention } from './worker/retention.js';
import { WorkerPool } from './worker/worker-pool.js';
import { answerMetricsRequests } from './worker/worker-ipc.js';
import { WorkerProcesses } from './worker/worker-processes.js';

export interface Service {
  readonly store: Store;
  readonly queue: Queue;
  readonly app: FastifyInstance | undefined;
  readonly workers: WorkerPool | undefined;
  readonly metrics: ProcessMetricsRegistry;
  /** The address the API listens on, when this role serves it. */
  readonly url: string | undefined;
  /** Resolves true when everything stopped cleanly within the configured timeout. */
  stop(): Promise<boolean>;
}

/** How often the workers create the partitions ahead. */
const PARTITION_UPKEEP_MS = 60_000;

export async function startService(config: Config, logger: Logger): Promise<Service> {
  const store = await createStore(config, logger);
  let queue: Queue;
  try {
    queue = await createQueue(config, store, logger);
  } catch (error) {
    await store.close();
    throw error;
  }

  const forked =
    config.role === 'all' && config.workersEnabled && config.workerProcesses > 0
      ? new WorkerProcesses(config.workerProcesses, config.instanceId, logger)
      : undefined;
  const metrics = new ProcessMetricsRegistry();
  const runWorkers = config.role !== 'api' && config.workersEnabled && forked === undefined;
  const retention = new Retention(store, config, logger);
  const workers = runWorkers
    ? new WorkerPool(queue, logger, {
        concurrency: config.workerConcurrency,
        instanceId: config.instanceId,
        periodic: [
          // Duplicates dropped while their stored copy was invisible are compared soon after.
          {
            name: 'conflict checks',
            intervalMs: 1000,
            run: () => store.resolvePendingConflicts(1000),
          },
          // Partitions are created well ahead (PARTITION_WINDOWS): a minute's delay is harmless.
          {
            name: 'partitions',
            intervalMs: PARTITION_UPKEEP_MS,
            run: () => retention.maintainPartitions(),
          },
          ...(retention.enabled
            ? [
                {
                  name: 'retention',
                  intervalMs: config.retentionIntervalMs,
                  run: (signal: AbortSignal) => retention.run(signal),
                },
              ]
            : []),
        ],
        onBatch: (_result, ms) => {
          metrics.applyDuration.observe(ms / 1000);
          metrics.batchesApplied.inc();
        },
      })
    : undefined;
  // A worker process forked by an API process answers its metrics requests.
  const stopAnswering =
    config.role === 'worker' && process.send !== undefined
      ? answerMetricsRequests(
          () => metrics.snapshot(),
          (error) => logger.warn({ err: error }, 'could not read metrics for the API process'),
        )
      : undefined;

  let app: FastifyInstance | undefined;
  let url: string | undefined;
  if (config.role !== 'worker') {
    app = await buildServer(
      {
        config,
        store,
        queue,
        startedAt: Date.now(),
        metrics,
        childMetrics: () => forked?.collectMetrics() ?? Promise.resolve([]),
        workers: () => ({
          running: (workers?.running ?? 0) + (forked?.alive ?? 0) * config.workerConcurrency,
          enabled: workers !== undefined || forked !== undefined,
        }),
      },
      logger,
    );
    url = await app.listen({ host: config.host, port: config.port });
  }
  workers?.start();
  forked?.start();
  logger.info(
    {
      url,
      workers: workers === undefined ? 0 : config.workerConcurrency,
      workerProcesses: forked === undefined ? 0 : config.workerProcesses,
    },
    'log aggregator started',
  );

  let stopping: Promise<boolean> | undefined;
  const stop = (): Promise<boolean> => {
    stopping ??= (async () => {
      const deadline = Date.now() + config.shutdownTimeoutMs;
      let clean = true;
      // Stop accepting first: in-flight requests finish and are answered.
      if (app !== undefined) await app.close();
      const [inProcess, children] = await Promise.all([
        workers?.stop(Math.max(0, deadline - Date.now())) ?? true,
        forked?.stop(Math.max(0, deadline - Date.now())) ?? true,
      ]);
      clean = inProcess && children;
      if (!clean) logger.warn('workers did not finish in time; their batches stay queued');
      stopAnswering?.();
      await queue.close();
      await store.close();
      return clean;
    })();
    return stopping;
  };

  return { store, queue, app, workers, metrics, url, stop };
}
