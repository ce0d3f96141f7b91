/**
 * SQL stores opened below the Store interface, on every SQL backend: a private PostgreSQL
 * database or PGlite directory, its driver and a SqlStore over it, for tests that look at the
 * tables themselves (partitions, search granules, migrations).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { migrated } from '../../src/store/migrate.js';
import { PgliteDriver } from '../../src/store/pglite/pglite-driver.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import { SqlStore } from '../../src/store/sql/sql-store.js';
import type { SqlDriver } from '../../src/store/sql-driver.js';
import { needsPostgres, TEST_DATABASE_URL } from './environment.js';
import { ROOT } from './process-service.js';

export interface OpenedSql {
  readonly driver: SqlDriver;
  readonly store: SqlStore;
  dispose(): Promise<void>;
}

/** An empty database (or data directory) of its own, not migrated. */
export interface SqlBackend {
  readonly name: string;
  readonly inPair: (p: Parameters<typeof needsPostgres>[0]) => boolean;
  readonly services: readonly ('postgres' | 'redis' | 'nats')[];
  empty(): Promise<{ driver: SqlDriver; dispose(): Promise<void> }>;
}

export const SQL_BACKENDS: readonly SqlBackend[] = [
  {
    name: 'postgres',
    inPair: needsPostgres,
    services: ['postgres'],
    async empty() {
      const name = `agg_part_${randomUUID().slice(0, 8)}`;
      const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE "${name}"`);
      await admin.end();
      const url = new URL(TEST_DATABASE_URL);
      url.pathname = `/${name}`;
      const driver = new PgDriver({ connectionString: url.toString(), poolSize: 4 });
      return {
        driver,
        async dispose() {
          await driver.close();
          const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
          await client.connect();
          await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
          await client.end();
        },
      };
    },
  },
  {
    name: 'pglite',
    inPair: (p) => !needsPostgres(p),
    services: [],
    async empty() {
      const dir = join(ROOT, 'test-results', 'tmp', `pglite-part-${randomUUID().slice(0, 8)}`);
      mkdirSync(dir, { recursive: true });
      const driver = await PgliteDriver.open(dir);
      return {
        driver,
        async dispose() {
          await driver.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

/** A migrated store of its own on `backend`; the caller disposes of it. */
export async function openMigrated(backend: SqlBackend): Promise<OpenedSql> {
  const empty = await backend.empty();
  try {
    await migrated(empty.driver);
  } catch (error) {
    await empty.dispose().catch(() => undefined);
    throw error;
  }
  return {
    driver: empty.driver,
    store: new SqlStore(empty.driver, backend.name === 'pglite' ? 'pglite' : 'postgres'),
    dispose: () => empty.dispose(),
  };
}
