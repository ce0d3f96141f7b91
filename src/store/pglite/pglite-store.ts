/**
 * The embedded Store: PGlite (PostgreSQL in WASM, in this process) running exactly the SQL of the
 * PostgreSQL backend, with its data in a directory so it survives restarts.
 */
import { migrate } from '../migrate.js';
import { PostgresStore } from '../postgres/postgres-store.js';
import { PgliteDriver } from './pglite-driver.js';

export async function openPgliteStore(dataDir: string): Promise<PostgresStore> {
  const driver = await PgliteDriver.open(dataDir);
  try {
    await migrate(driver);
  } catch (error) {
    await driver.close();
    throw error;
  }
  return new PostgresStore(driver, 'pglite');
}
