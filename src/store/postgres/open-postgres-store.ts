/** Opens the production Store: a `pg` pool on DATABASE_URL, migrated before first use. */
import { migrate } from '../migrate.js';
import { PgDriver, type PgDriverOptions } from './pg-driver.js';
import { PostgresStore } from './postgres-store.js';

export async function openPostgresStore(options: PgDriverOptions): Promise<PostgresStore> {
  const driver = new PgDriver(options);
  try {
    await migrate(driver);
  } catch (error) {
    await driver.close();
    throw error;
  }
  return new PostgresStore(driver, 'postgres');
}
