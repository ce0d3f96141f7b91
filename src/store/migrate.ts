/**
 * Applies the numbered SQL files of `migrations/` in order, each once, recording them in
 * `schema_migrations`. An advisory lock held for the transaction makes it safe for several
 * processes to start at the same moment: one migrates, the others wait and find nothing to do.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { SqlDriver } from './sql-driver.js';

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);
/** Arbitrary constant naming this service's migration lock. */
const MIGRATION_LOCK_KEY = 7_212_001;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f));
  files.sort();
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: await readFile(new URL(file, MIGRATIONS_DIR), 'utf8'),
    })),
  );
}

/** Brings the schema up to date; resolves with the versions applied now. */
export async function migrate(driver: SqlDriver): Promise<number[]> {
  const migrations = await loadMigrations();
  return driver.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer     PRIMARY KEY,
      name       text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const rows = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    return applied;
  });
}

/** Migrates a freshly opened driver, closing it if that fails, and hands it back. */
export async function migrated<D extends SqlDriver>(driver: D): Promise<D> {
  try {
    await migrate(driver);
    return driver;
  } catch (error) {
    await driver.close();
    throw error;
  }
}
