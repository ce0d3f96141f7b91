/**
 * Starts the real service for a test on fresh, private data: a PostgreSQL database cloned from
 * the migrated template, a PGlite directory copied from its template, a Redis key prefix of its
 * own. The same environment can start the service as a child process (see process-service.ts).
 */
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { inject } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startService, type Service } from '../../src/service.js';
import {
  inEverySuite,
  needsNats,
  needsPostgres,
  needsRedis,
  requestedBackends,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  TEST_REDIS_URL,
  type BackendName,
} from './environment.js';
import { ROOT } from './process-service.js';

export interface BackendChoice {
  readonly name: BackendName;
  /** Why the suite is skipped on this backend, or undefined when it runs. */
  readonly skip: string | undefined;
}

/**
 * The backends a shared suite runs on, each with its skip reason if a service is missing.
 * `focused`: the suite is one of the few that also runs on the focused backends (JetStream).
 */
export function suiteBackends(
  only?: (b: BackendName) => boolean,
  options: { focused?: boolean } = {},
): BackendChoice[] {
  return requestedBackends()
    .filter((b) => only === undefined || only(b))
    .filter((b) => options.focused === true || inEverySuite(b))
    .map((name) => {
      if (needsPostgres(name) && !inject('postgresAvailable')) {
        return { name, skip: 'PostgreSQL not reachable' };
      }
      if (needsRedis(name) && !inject('redisAvailable'))
        return { name, skip: 'Redis not reachable' };
      if (needsNats(name) && !inject('natsAvailable'))
        return { name, skip: 'NATS JetStream not reachable' };
      return { name, skip: undefined };
    });
}

/** Private data for one test: the environment that points the service at it, and its cleanup. */
export interface TestResources {
  readonly backend: BackendName;
  readonly env: Record<string, string>;
  readonly databaseUrl: string | undefined;
  readonly redisKeyPrefix: string | undefined;
  dispose(): Promise<void>;
}

export async function createResources(backend: BackendName): Promise<TestResources> {
  const id = randomUUID().slice(0, 8);
  // Workers run inside the service under test unless a test asks for worker processes.
  const env: Record<string, string> = {
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
    WORKER_PROCESSES: '0',
  };
  const cleanups: (() => Promise<void>)[] = [];
  let databaseUrl: string | undefined;
  let redisKeyPrefix: string | undefined;

  if (needsPostgres(backend)) {
    const name = `agg_test_${id}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${inject('pgTemplate')}"`);
    await admin.end();
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    env.DATABASE_URL = databaseUrl;
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    });
  } else {
    const dir = join(ROOT, 'test-results', 'tmp', `pglite-${id}`);
    mkdirSync(dir, { recursive: true });
    cpSync(inject('pgliteTemplateDir'), dir, { recursive: true });
    env.DATA_DIR = dir;
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  }

  if (needsRedis(backend)) {
    redisKeyPrefix = `test-${randomUUID()}`;
    env.REDIS_URL = TEST_REDIS_URL;
    env.REDIS_KEY_PREFIX = redisKeyPrefix;
    const prefix = redisKeyPrefix;
    cleanups.push(async () => {
      const redis = new Redis(TEST_REDIS_URL);
      await redis.del(`${prefix}:stream`, `${prefix}:depth`);
      redis.disconnect();
    });
  }

  if (needsNats(backend)) {
    const stream = `test-${randomUUID()}`;
    env.NATS_URL = TEST_NATS_URL;
    env.NATS_STREAM = stream;
    cleanups.push(() => deleteStream(stream));
  }

  return {
    backend,
    env,
    databaseUrl,
    redisKeyPrefix,
    async dispose() {
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };
}

/** Deletes a test's JetStream stream (and its consumer); a missing stream is fine. */
export async function deleteStream(stream: string, url = TEST_NATS_URL): Promise<void> {
  const nc = await connectNats({ servers: url, reconnect: false });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

export interface TestService {
  readonly url: string;
  readonly service: Service;
  readonly resources: TestResources;
  /** Stops the service (keeps the data). */
  stop(): Promise<void>;
  /** Stops the service and deletes its data. */
  close(): Promise<void>;
}

/** Starts the service in this process on `resources` (fresh ones when omitted). */
export async function startTestService(
  backend: BackendName,
  overrides: Record<string, string> = {},
  existing?: TestResources,
): Promise<TestService> {
  const resources = existing ?? (await createResources(backend));
  const config = loadConfig({ ...resources.env, CLAIM_IDLE_MS: '2000', ...overrides });
  const logger = pino({ level: config.logLevel });
  const service = await startService(config, logger);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await service.stop();
  };
  return {
    url: service.url ?? '',
    service,
    resources,
    stop,
    async close() {
      await stop();
      await resources.dispose();
    },
  };
}
