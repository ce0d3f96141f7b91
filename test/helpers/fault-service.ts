/**
 * The fixture every fault test starts from: private servers (fault-resources.ts), the built
 * service on them as a process group of its own on a fixed port (so a restart keeps the URL), a
 * workload of its own keys, a retrying publisher, and the exactly-once check every fault test ends
 * with (invariants.ts). A test adds only its fault.
 */
import { randomUUID } from 'node:crypto';
import { makeWorkload, type Workload } from '../../src/cli/workload.js';
import type { BackendName } from './environment.js';
import { createFaultResources, type FaultResources } from './fault-resources.js';
import type { Stats } from './http.js';
import { expectSettledExactlyOnce } from './invariants.js';
import type { AppendFsync } from './private-redis.js';
import { freePort, spawnService, type ServiceProcess } from './process-service.js';
import { startPublishing, type PublisherReport, type Publishing } from './retrying-publisher.js';
import type { StoredState } from './stored-state.js';

/** Events per request, and requests in flight, of every fault test's publisher. */
const BATCH = 100;
const CONCURRENCY = 8;

export interface FaultServiceOptions {
  /** Events the workload publishes, 35% of them duplicates. */
  readonly events: number;
  /** Topic names (made unique to the test). */
  readonly topics: readonly string[];
  /** Seed of the workload, so a failure can be replayed. */
  readonly seed: number;
  /** Redis's appendfsync on the postgres-redis backend. */
  readonly appendfsync?: AppendFsync;
}

export interface FaultService {
  readonly resources: FaultResources;
  readonly workload: Workload;
  /** Requests the workload takes (batches of 100). */
  readonly batches: number;
  /** The service's URL; it stays the same across restarts. */
  readonly url: string;
  /** The service process started last. */
  readonly service: ServiceProcess;
  /** Starts the service (again) on the same port and data, once it is healthy. */
  start(): Promise<ServiceProcess>;
  /** Starts publishing the workload; `onAnswer` hears every attempt's status. */
  publish(onAnswer?: (status: number) => void): Publishing;
  /**
   * Waits for the publisher to have every batch acknowledged, then ends as every fault test
   * does: the queue drains, the service started last stops cleanly (`beforeStop` runs just
   * before), and the database holds every acknowledged event exactly once.
   */
  settle(
    publisher: Publishing,
    beforeStop?: () => Promise<void>,
  ): Promise<{ stats: Stats; state: StoredState; report: PublisherReport }>;
  /** Kills what still runs and removes the private servers. */
  dispose(): Promise<void>;
}

/** Private servers for `backend` and the service on them, started and healthy. */
export async function startFaultService(
  backend: BackendName,
  options: FaultServiceOptions,
): Promise<FaultService> {
  const resources = await createFaultResources(backend, { appendfsync: options.appendfsync });
  // WORKER_PROCESSES keeps its default: on PostgreSQL the service forks a worker process, and a
  // fault that takes the service takes that process too. Redelivery after 2 s keeps tests short.
  const env = { ...resources.env, CLAIM_IDLE_MS: '2000' };
  const id = randomUUID().slice(0, 8);
  const workload = makeWorkload({
    total: options.events,
    dupRate: 0.35,
    topics: options.topics.map((t) => `${t}-${id}`),
    idPrefix: id,
    seed: options.seed,
  });
  let port: number;
  let current: ServiceProcess | undefined;
  const start = async () => {
    current = await spawnService(env, { port, ownProcessGroup: true, readyTimeoutMs: 60_000 });
    return current;
  };
  const dispose = async () => {
    await current?.stopGroup('SIGKILL');
    await resources.dispose();
  };
  try {
    port = await freePort();
    await start();
  } catch (error) {
    await dispose();
    throw error;
  }
  const url = `http://127.0.0.1:${port}`;
  const running = () => {
    if (current === undefined) throw new Error('the service was never started');
    return current;
  };
  return {
    resources,
    workload,
    batches: Math.ceil(options.events / BATCH),
    url,
    get service() {
      return running();
    },
    start,
    publish: (onAnswer) =>
      startPublishing(url, workload.events, { batch: BATCH, concurrency: CONCURRENCY, onAnswer }),
    async settle(publisher, beforeStop) {
      const report = await publisher.done;
      const last = running();
      const { stats, state } = await expectSettledExactlyOnce({
        url,
        events: options.events,
        unique: workload.unique,
        published: workload.events,
        acknowledged: publisher.acknowledgedEvents(),
        uncertainEvents: report.uncertainEvents,
        beforeStop,
        stop: () => last.stopGroup('SIGTERM'),
        resources,
      });
      return { stats, state, report };
    },
    dispose,
  };
}
