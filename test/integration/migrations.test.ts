/** Migrations: numbered, recorded, and safe when several processes start at the same moment. */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { loadMigrations, migrate } from '../../src/store/migrate.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import { TEST_DATABASE_URL } from '../helpers/environment.js';
import { suiteBackends } from '../helpers/test-service.js';

const [backend] = suiteBackends((b) => b === 'postgres-inbox');
const skip = backend === undefined || backend.skip !== undefined;

describe.skipIf(skip)(
  `migrations on PostgreSQL${skip ? ' (SKIPPED: needs PostgreSQL)' : ''}`,
  () => {
    it('are numbered from 0001 without gaps', async () => {
      const versions = (await loadMigrations()).map((m) => m.version);
      expect(versions).toEqual(versions.map((_, i) => i + 1));
    });

    it('run once when eight processes start at the same moment on an empty database', async () => {
      const name = `agg_mig_${randomUUID().slice(0, 8)}`;
      const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE "${name}"`);
      const url = new URL(TEST_DATABASE_URL);
      url.pathname = `/${name}`;
      const drivers = Array.from(
        { length: 8 },
        () => new PgDriver({ connectionString: url.toString(), poolSize: 1 }),
      );
      try {
        const applied = await Promise.all(drivers.map((d) => migrate(d)));
        const all = (await loadMigrations()).map((m) => m.version);
        // Exactly one starter applied them; the others found nothing to do.
        expect(applied.filter((a) => a.length > 0)).toEqual([all]);
        const rows = await drivers[0]!.query<{ version: number }>(
          'SELECT version FROM schema_migrations ORDER BY version',
        );
        expect(rows.map((r) => r.version)).toEqual(all);
        expect(await migrate(drivers[0]!)).toEqual([]);
      } finally {
        await Promise.all(drivers.map((d) => d.close()));
        await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await admin.end();
      }
    });
  },
);
