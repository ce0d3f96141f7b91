/** Opens the production Store: a `pg` pool on DATABASE_URL, migrated before first use. */
import { migrated } from '../migrate.js';
import { applySearchIndexSetting } from '../sql/search-indexes.js';
import type { DuplicatePolicy } from '../store.js';
import { PgDriver, type PgDriverOptions } from './pg-driver.js';
import { SqlStore } from '../sql/sql-store.js';

export async function openPostgresStore(
  options: PgDriverOptions & { duplicatePolicy?: DuplicatePolicy; searchIndex?: boolean },
): Promise<SqlStore> {
  const driver = await migrated(new PgDriver(options));
  try {
    await applySearchIndexSetting(driver, options.searchIndex ?? true);
  } catch (error) {
    await driver.close();
    throw error;
  }
  return new SqlStore(driver, 'postgres', options);
}
