/** Opens the production Store: a `pg` pool on DATABASE_URL, migrated before first use. */
import { migrated } from '../migrate.js';
import { applySearchIndexSetting } from '../sql/search-indexes.js';
import { prepareStorage, type StorageOptions } from '../sql/storage-options.js';
import type { DuplicatePolicy } from '../store.js';
import { PgDriver, type PgDriverOptions } from './pg-driver.js';
import { SqlStore } from '../sql/sql-store.js';

export async function openPostgresStore(
  options: PgDriverOptions &
    StorageOptions & { duplicatePolicy?: DuplicatePolicy; searchIndex?: boolean },
): Promise<SqlStore> {
  const driver = await migrated(new PgDriver(options));
  try {
    await applySearchIndexSetting(driver, options.searchIndex ?? true);
    const store = new SqlStore(driver, 'postgres', options);
    await prepareStorage(store, options);
    return store;
  } catch (error) {
    await driver.close();
    throw error;
  }
}
