/** SqlDriver over a `pg` connection pool: the production PostgreSQL backend. */
import pg from 'pg';
import type { SqlDriver, SqlQueryable } from '../sql-driver.js';
import { mapSqlError } from '../sql-errors.js';

export interface PgDriverOptions {
  readonly connectionString: string;
  readonly poolSize: number;
  readonly applicationName?: string;
  /** Called when an idle pooled connection fails (e.g. the server restarted). */
  readonly onIdleError?: (error: Error) => void;
}

export class PgDriver implements SqlDriver {
  private readonly pool: pg.Pool;

  constructor(options: PgDriverOptions) {
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      application_name: options.applicationName ?? 'log-aggregator',
      // Event timestamps without an offset are UTC, whatever the server's default time zone.
      options: '-c TimeZone=UTC',
    });
    // Without a listener an idle client's error would crash the process; the next query on a
    // fresh connection reports the outage instead.
    this.pool.on('error', (error) => options.onIdleError?.(error));
  }

  async query<Row>(text: string, params?: readonly unknown[], name?: string): Promise<Row[]> {
    try {
      const result = await this.pool.query({ text, values: params as unknown[], name });
      return result.rows as Row[];
    } catch (error) {
      throw mapSqlError(error);
    }
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.pool.query(sql);
    } catch (error) {
      throw mapSqlError(error);
    }
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw mapSqlError(error);
    }
    const tx: SqlQueryable = {
      async query<Row>(text: string, params?: readonly unknown[], name?: string) {
        const result = await client.query({ text, values: params as unknown[], name });
        return result.rows as Row[];
      },
      async exec(sql: string) {
        await client.query(sql);
      },
    };
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const value = await fn(tx);
      await client.query('COMMIT');
      return value;
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      await client.query('ROLLBACK').catch(() => undefined);
      throw mapSqlError(error);
    } finally {
      // A connection whose transaction failed at the socket level is not reused.
      client.release(broken !== undefined && !('code' in broken) ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
