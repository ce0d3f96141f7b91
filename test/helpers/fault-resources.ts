/**
 * Private servers for fault tests. A fault test crashes and restarts what the service depends on,
 * so it never uses the shared PostgreSQL and Redis: each test gets its own PostgreSQL cluster
 * (private-postgres.ts), its own redis-server (private-redis.ts) or its own PGlite directory,
 * on free ports and in temporary directories, and reads the outcome straight from that database.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import {
  inEverySuite,
  needsNats,
  needsPostgres,
  needsRedis,
  needsRedisCluster,
  REQUIRE_SERVICES,
  requestedBackends,
  type BackendName,
} from './environment.js';
import { startPrivateRedisCluster, type PrivateRedisCluster } from './private-redis-cluster.js';
import { privateNatsMissing, startPrivateNats, type PrivateNats } from './private-nats.js';
import {
  privatePostgresMissing,
  startPrivatePostgres,
  type PrivatePostgres,
} from './private-postgres.js';
import {
  privateRedisMissing,
  startPrivateRedis,
  type AppendFsync,
  type PrivateRedis,
} from './private-redis.js';
import { readPgliteState, readPostgresState, type StoredState } from './stored-state.js';

export interface FaultBackend {
  readonly name: BackendName;
  /** Why the suite is skipped on this backend, or undefined when it runs. */
  readonly skip: string | undefined;
}

/**
 * The backends (of those BACKENDS selects, filtered by `only`) a fault suite runs on, each with
 * the reason it is skipped when the server binaries are missing. With REQUIRE_SERVICES set a
 * missing binary is an error, not a skip. `focused`: the suite also runs on the focused backends
 * (JetStream) that only a few suites cover.
 */
export function faultBackends(
  only?: (b: BackendName) => boolean,
  options: { focused?: boolean } = {},
): FaultBackend[] {
  return requestedBackends()
    .filter((b) => only === undefined || only(b))
    .filter((b) => options.focused === true || inEverySuite(b))
    .map((name) => {
      const missing = [
        needsPostgres(name) ? privatePostgresMissing() : undefined,
        needsRedis(name) || needsRedisCluster(name) ? privateRedisMissing() : undefined,
        needsNats(name) ? privateNatsMissing() : undefined,
      ].filter((m) => m !== undefined);
      const skip = missing.length > 0 ? missing.join('; ') : undefined;
      if (skip !== undefined && REQUIRE_SERVICES) {
        throw new Error(
          `REQUIRE_SERVICES is set but the fault tests on ${name} cannot run: ${skip}`,
        );
      }
      if (skip !== undefined) {
        process.stderr.write(
          `!! SKIPPING fault tests on ${name}: ${skip} (REQUIRE_SERVICES=1 fails instead)\n`,
        );
      }
      return { name, skip };
    });
}

/** The title of a fault suite, saying loudly when and why it is skipped. */
export function suiteTitle(title: string, backend: FaultBackend): string {
  return `${title} on ${backend.name}${backend.skip === undefined ? '' : ` (SKIPPED: ${backend.skip})`}`;
}

export interface FaultResources {
  /** The environment that points a service at these servers. */
  readonly env: Record<string, string>;
  readonly postgres: PrivatePostgres | undefined;
  readonly redis: PrivateRedis | undefined;
  readonly nats: PrivateNats | undefined;
  readonly redisCluster: PrivateRedisCluster | undefined;
  /** What the database holds; on PGlite the service must be stopped first. */
  readState(): Promise<StoredState>;
  dispose(): Promise<void>;
}

export async function createFaultResources(
  backend: BackendName,
  options: { appendfsync?: AppendFsync } = {},
): Promise<FaultResources> {
  const env: Record<string, string> = { HOST: '127.0.0.1', LOG_LEVEL: 'info' };
  let postgres: PrivatePostgres | undefined;
  let redis: PrivateRedis | undefined;
  let nats: PrivateNats | undefined;
  let redisCluster: PrivateRedisCluster | undefined;
  let dataDir: string | undefined;
  let root: string | undefined;
  const dispose = async () => {
    await redis?.dispose();
    await nats?.dispose();
    await redisCluster?.dispose();
    await postgres?.dispose();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  };
  try {
    if (needsPostgres(backend)) {
      postgres = await startPrivatePostgres();
      env.DATABASE_URL = postgres.url();
    } else {
      root = mkdtempSync(join(tmpdir(), 'agg-pglite-'));
      dataDir = join(root, 'data');
      // A copy of the migrated template: the first start need not create the cluster.
      cpSync(inject('pgliteTemplateDir'), dataDir, { recursive: true });
      env.DATA_DIR = dataDir;
    }
    if (needsRedis(backend)) {
      redis = await startPrivateRedis({ appendfsync: options.appendfsync });
      env.REDIS_URL = redis.url;
    }
    if (needsNats(backend)) {
      nats = await startPrivateNats();
      env.NATS_URL = nats.url;
    }
    if (needsRedisCluster(backend)) {
      redisCluster = await startPrivateRedisCluster();
      env.REDIS_CLUSTER_NODES = redisCluster.nodes.join(',');
      env.REDIS_MIN_REPLICAS = '1';
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    env,
    postgres,
    redis,
    nats,
    redisCluster,
    readState: () =>
      postgres !== undefined ? readPostgresState(postgres.url()) : readPgliteState(dataDir ?? ''),
    dispose,
  };
}
