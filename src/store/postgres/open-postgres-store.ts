/** Opens the production Store: a `pg` pool on DATABASE_URL, migrated before first use. */
import { migrated } from '../migrate.js';
import type { DuplicatePolicy } from '../store.js';
import { PgDriver, type PgDriverOptions } from './pg-driver.js';
import { SqlStore } from '../sql/sql-store.js';

export async function openPostgresStore(
  options: PgDriverOptions & { duplicatePolicy?: DuplicatePolicy },
): Promise<SqlStore> {
  return new SqlStore(await migrated(new PgDriver(options)), 'postgres', options);
}
