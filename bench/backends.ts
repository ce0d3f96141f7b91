/**
 * One runner per backend combination: the fresh data a run gets (a new PostgreSQL database, a
 * PGlite directory, a Redis key prefix), the service environment that points at it, where its
 * ceiling is measured, and which processes the service runs as.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { LogEvent } from '../src/log-event.js';
import { pgliteCeiling, postgresCeiling } from './ceiling.js';
import { startPrivateNats } from '../test/helpers/private-nats.js';
import { startPrivateRedisCluster } from '../test/helpers/private-redis-cluster.js';
import type { Backend } from './result.js';

/** Where the benchmark's databases and queues live. */
export interface ServiceUrls {
  /** A PostgreSQL database the benchmark may create databases from. */
  readonly databaseUrl: string;
  readonly redisUrl: string;
}

/** The private data of one run, until `dispose`. */
export interface FreshData {
  /** Environment of the service processes (the backend part only). */
  readonly env: Readonly<Record<string, string>>;
  /** Events per second of the raw insert ceiling on this data's database. */
  ceiling(events: readonly LogEvent[]): Promise<number>;
  dispose(): Promise<void>;
}

export interface BackendRunner {
  /**
   * Whether the workers run in processes of their own (`ROLE=api` plus `ROLE=worker`s), or
   * inside the one process (PGlite belongs to one process).
   */
  readonly separateWorkers: boolean;
  fresh(runId: string, urls: ServiceUrls): Promise<FreshData>;
}

/** A new database named after the run, dropped (with its connections) on dispose. */
async function freshDatabase(runId: string, adminUrl: string) {
  const name = `agg_bench_${runId}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    databaseUrl: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

const postgresInbox: BackendRunner = {
  separateWorkers: true,
  async fresh(runId, urls) {
    const db = await freshDatabase(runId, urls.databaseUrl);
    return {
      env: { DATABASE_URL: db.databaseUrl },
      ceiling: (events) => postgresCeiling(db.databaseUrl, events),
      dispose: () => db.drop(),
    };
  },
};

const postgresRedis: BackendRunner = {
  separateWorkers: true,
  async fresh(runId, urls) {
    const db = await freshDatabase(runId, urls.databaseUrl);
    const prefix = `bench-${runId}`;
    return {
      env: { DATABASE_URL: db.databaseUrl, REDIS_URL: urls.redisUrl, REDIS_KEY_PREFIX: prefix },
      ceiling: (events) => postgresCeiling(db.databaseUrl, events),
      async dispose() {
        const redis = new Redis(urls.redisUrl);
        await redis.del(`${prefix}:stream`, `${prefix}:depth`);
        redis.disconnect();
        await db.drop();
      },
    };
  },
};

const pgliteInbox: BackendRunner = {
  separateWorkers: false,
  async fresh() {
    const dataDir = mkdtempSync(join(tmpdir(), 'agg-bench-'));
    return {
      env: { DATA_DIR: dataDir },
      ceiling: (events) => pgliteCeiling(events),
      async dispose() {
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

/** A private 3-master cluster with a replica each, started for the run (bench/ owns no cluster). */
const postgresRedisCluster: BackendRunner = {
  separateWorkers: true,
  async fresh(runId, urls) {
    const db = await freshDatabase(runId, urls.databaseUrl);
    const cluster = await startPrivateRedisCluster();
    return {
      env: {
        DATABASE_URL: db.databaseUrl,
        REDIS_CLUSTER_NODES: cluster.nodes.join(','),
        REDIS_MIN_REPLICAS: '1',
      },
      ceiling: (events) => postgresCeiling(db.databaseUrl, events),
      async dispose() {
        await cluster.dispose();
        await db.drop();
      },
    };
  },
};

/** A private `nats-server -js` with its store in a temporary directory, started for the run. */
const postgresJetStream: BackendRunner = {
  separateWorkers: true,
  async fresh(runId, urls) {
    const db = await freshDatabase(runId, urls.databaseUrl);
    const nats = await startPrivateNats();
    return {
      env: { DATABASE_URL: db.databaseUrl, NATS_URL: nats.url, NATS_STREAM: `bench-${runId}` },
      ceiling: (events) => postgresCeiling(db.databaseUrl, events),
      async dispose() {
        await nats.dispose();
        await db.drop();
      },
    };
  },
};

export const RUNNERS: Readonly<Record<Backend, BackendRunner>> = {
  'postgres-redis': postgresRedis,
  'postgres-inbox': postgresInbox,
  'pglite-inbox': pgliteInbox,
  'postgres-redis-cluster': postgresRedisCluster,
  'postgres-jetstream': postgresJetStream,
};

/** How a run's processes are described in the results, e.g. `1 api + 2 worker processes`. */
export function topology(backend: Backend, workerProcesses: number): string {
  if (!RUNNERS[backend].separateWorkers) return '1 process (all)';
  return `1 api + ${workerProcesses} worker process${workerProcesses > 1 ? 'es' : ''}`;
}
