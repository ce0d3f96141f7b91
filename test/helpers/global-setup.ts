/**
 * Runs once before the tests: builds the service (process tests start `node dist/main.js`),
 * checks which services are reachable, and prepares migrated templates (a PostgreSQL template
 * database and a PGlite data directory) that each test copies instead of migrating again.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect as connectNats } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/store/migrate.js';
import { PgliteDriver } from '../../src/store/pglite/pglite-driver.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import {
  needsNats,
  needsPostgres,
  needsRedis,
  REQUIRE_SERVICES,
  requestedBackends,
  TEST_DATABASE_URL,
  TEST_NATS_URL,
  TEST_REDIS_URL,
} from './environment.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAvailable: boolean;
    redisAvailable: boolean;
    natsAvailable: boolean;
    pgTemplate: string;
    pgliteTemplateDir: string;
  }
}

const ROOT = new URL('../../', import.meta.url).pathname;

function migrationsHash(): string {
  const dir = join(ROOT, 'src/store/migrations');
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort())
    hash.update(file).update(readFileSync(join(dir, file)));
  return hash.digest('hex').slice(0, 12);
}

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({
    connectionString: TEST_DATABASE_URL,
    connectionTimeoutMillis: 3000,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisReachable(): Promise<boolean> {
  const redis = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return true;
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function natsReachable(): Promise<boolean> {
  try {
    const nc = await connectNats({ servers: TEST_NATS_URL, timeout: 3000, reconnect: false });
    // JetStream must be on: the account info request has no responder without it.
    await nc.request('$JS.API.INFO', undefined, { timeout: 3000 });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

async function preparePostgresTemplate(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await admin.query(`CREATE DATABASE "${name}"`);
      const url = new URL(TEST_DATABASE_URL);
      url.pathname = `/${name}`;
      const driver = new PgDriver({ connectionString: url.toString(), poolSize: 1 });
      await migrate(driver);
      await driver.close();
    }
  } finally {
    await admin.end();
  }
}

async function preparePgliteTemplate(dir: string): Promise<void> {
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  const driver = await PgliteDriver.open(building);
  await migrate(driver);
  await driver.close();
  rmSync(dir, { recursive: true, force: true });
  renameSync(building, dir);
}

export default async function setup(project: TestProject): Promise<void> {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  execFileSync('node', ['scripts/copy-assets.mjs'], { cwd: ROOT, stdio: 'inherit' });

  const backends = requestedBackends();
  const wantPostgres = backends.some(needsPostgres);
  const wantRedis = backends.some(needsRedis);
  const postgresAvailable = wantPostgres && (await postgresReachable());
  const redisAvailable = wantRedis && (await redisReachable());
  const wantNats = backends.some(needsNats);
  const natsAvailable = wantNats && (await natsReachable());
  const missing = [
    wantPostgres && !postgresAvailable ? `PostgreSQL at ${TEST_DATABASE_URL}` : undefined,
    wantRedis && !redisAvailable ? `Redis at ${TEST_REDIS_URL}` : undefined,
    wantNats && !natsAvailable ? `NATS JetStream at ${TEST_NATS_URL}` : undefined,
  ].filter((m) => m !== undefined);
  if (missing.length > 0) {
    const message = `not reachable: ${missing.join(' and ')}`;
    if (REQUIRE_SERVICES) throw new Error(`REQUIRE_SERVICES is set but ${message}`);
    process.stderr.write(
      `\n${'!'.repeat(78)}\n!! SKIPPING the tests that need them: ${message}\n!! Set TEST_DATABASE_URL / TEST_REDIS_URL / TEST_NATS_URL, or REQUIRE_SERVICES=1 to fail instead.\n${'!'.repeat(78)}\n\n`,
    );
  }

  const hash = migrationsHash();
  const pgTemplate = `agg_template_${hash}`;
  if (postgresAvailable) await preparePostgresTemplate(pgTemplate);
  const pgliteTemplateDir = join(ROOT, 'test-results', `pglite-template-${hash}`);
  await preparePgliteTemplate(pgliteTemplateDir);

  project.provide('postgresAvailable', postgresAvailable);
  project.provide('redisAvailable', redisAvailable);
  project.provide('natsAvailable', natsAvailable);
  project.provide('pgTemplate', pgTemplate);
  project.provide('pgliteTemplateDir', pgliteTemplateDir);
}
