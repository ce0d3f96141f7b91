/**
 * The embedded Store: PGlite (PostgreSQL in WASM, in this process) running exactly the SQL of the
 * PostgreSQL backend, with its data in a directory so it survives restarts.
 */
import { migrated } from '../migrate.js';
import { PostgresStore } from '../postgres/postgres-store.js';
import { PgliteDriver } from './pglite-driver.js';

export async function openPgliteStore(dataDir: string): Promise<PostgresStore> {
  return new PostgresStore(await migrated(await PgliteDriver.open(dataDir)), 'pglite');
}
