/** Chooses the Store backend from the configuration: PostgreSQL if DATABASE_URL is set, else PGlite. */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { openPgliteStore } from './pglite/pglite-store.js';
import { openPostgresStore } from './postgres/open-postgres-store.js';
import type { StorageOptions } from './sql/storage-options.js';
import type { Store } from './store.js';

export async function createStore(config: Config, logger: Logger): Promise<Store> {
  const storage: StorageOptions = {
    partitionInterval: config.partitionInterval,
    retentionDays: config.retentionDays,
    onStorageError: (error) =>
      logger.warn(
        { err: error },
        'could not create the partitions at start; events go to the default partition until the upkeep can',
      ),
  };
  if (config.databaseUrl !== undefined) {
    const store = await openPostgresStore({
      connectionString: config.databaseUrl,
      poolSize: config.pgPoolSize,
      applicationName: `log-aggregator:${config.role}`,
      duplicatePolicy: config.duplicatePolicy,
      searchIndex: config.searchIndex,
      ...storage,
      // The next query reports an outage; this only notes that a pooled connection went away.
      onIdleError: (error) =>
        logger.warn(
          { code: (error as { code?: unknown }).code, reason: error.message },
          'idle PostgreSQL connection closed by the server',
        ),
    });
    logger.info({ store: 'postgres' }, 'store ready: PostgreSQL');
    return store;
  }
  logger.info(
    { store: 'pglite', dataDir: config.dataDir },
    'opening the embedded PGlite store (the first start creates it, which takes a few seconds)',
  );
  const started = Date.now();
  const store = await openPgliteStore(
    config.dataDir,
    config.duplicatePolicy,
    config.searchIndex,
    storage,
  );
  logger.info({ store: 'pglite', ms: Date.now() - started }, 'store ready: embedded PGlite');
  return store;
}
