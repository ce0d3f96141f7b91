/**
 * The embedded Store: PGlite (PostgreSQL in WASM, in this process) running exactly the SQL of the
 * PostgreSQL backend, with its data in a directory so it survives restarts.
 */
import { migrated } from '../migrate.js';
import { applySearchIndexSetting } from '../sql/search-indexes.js';
import { prepareStorage, type StorageOptions } from '../sql/storage-options.js';
import type { DuplicatePolicy } from '../store.js';
import { SqlStore } from '../sql/sql-store.js';
import { PgliteDriver } from './pglite-driver.js';
import { PgliteThreadDriver, pgliteThreadEntry } from './pglite-thread-driver.js';

/**
 * Opens the embedded store. PGlite runs on a thread of its own so that the API and the database
 * use two cores; only when running from sources without a build does it run on the main thread.
 */
export async function openPgliteStore(
  dataDir: string,
  duplicatePolicy: DuplicatePolicy = 'first-wins',
  searchIndex = true,
  storage: StorageOptions = {},
): Promise<SqlStore> {
  const entry = pgliteThreadEntry();
  const driver =
    entry === undefined
      ? await PgliteDriver.open(dataDir)
      : await PgliteThreadDriver.open(dataDir, entry);
  await migrated(driver);
  try {
    await applySearchIndexSetting(driver, searchIndex);
    const store = new SqlStore(driver, 'pglite', { duplicatePolicy, ...storage });
    await prepareStorage(store, storage);
    return store;
  } catch (error) {
    await driver.close();
    throw error;
  }
}
