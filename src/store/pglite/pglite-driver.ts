/**
 * SqlDriver over PGlite: PostgreSQL compiled to WASM, in this process, data in a directory. It has
 * one connection, so statements and transactions run one at a time; PGlite queues them itself.
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from './pglite-extensions.js';
import type { Notifications, SqlDriver, SqlQueryable } from '../sql-driver.js';
import { mapSqlError } from '../sql-errors.js';

export class PgliteDriver implements SqlDriver {
  private constructor(private readonly db: PGlite) {}

  /** Opens (creating on first use) the database in `dataDir`; `memory://` keeps it in memory. */
  static async open(dataDir: string): Promise<PgliteDriver> {
    const db = await PGlite.create(dataDir, { extensions: PGLITE_EXTENSIONS });
    // Event timestamps without an offset are UTC (one connection, so the session setting holds).
    await db.exec("SET TIME ZONE 'UTC'");
    return new PgliteDriver(db);
  }

  async query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]> {
    try {
      const result = await this.db.query<Row>(text, params as unknown[]);
      return result.rows;
    } catch (error) {
      throw mapSqlError(error);
    }
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.db.exec(sql);
    } catch (error) {
      throw mapSqlError(error);
    }
  }

  async listen(channel: string, notifications: Notifications): Promise<() => Promise<void>> {
    return this.db.listen(channel, (payload) => notifications.onNotify(payload));
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction(async (t) =>
        fn({
          async query<Row>(text: string, params?: readonly unknown[]) {
            const result = await t.query<Row>(text, params as unknown[]);
            return result.rows;
          },
          async exec(sql: string) {
            await t.exec(sql);
          },
        }),
      );
    } catch (error) {
      throw mapSqlError(error);
    }
  }

  async close(): Promise<void> {
    if (!this.db.closed) await this.db.close();
  }
}
