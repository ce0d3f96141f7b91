/** SqlDriver over a `pg` connection pool: the production PostgreSQL backend. */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Notifications, SqlDriver, SqlQueryable } from '../sql-driver.js';
import { mapSqlError } from '../sql-errors.js';

export interface PgDriverOptions {
  readonly connectionString: string;
  readonly poolSize: number;
  readonly applicationName?: string;
  /** Called when an idle pooled connection fails (e.g. the server restarted). */
  readonly onIdleError?: (error: Error) => void;
}

const LISTEN_RETRY_MAX_MS = 5000;

export class PgDriver implements SqlDriver {
  private readonly pool: pg.Pool;

  constructor(private readonly options: PgDriverOptions) {
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      application_name: options.applicationName ?? 'log-aggregator',
      // Event timestamps without an offset are UTC, whatever the server's default time zone.
      // No JIT compilation: every statement here reads through indexes in milliseconds, but a
      // search over many partitions is costed in the millions (its id ranges are unknown when
      // planned), past jit_above_cost, and compiling it took 2.9 s of a 3 s query on 10,000,000
      // events (docs/search.md).
      options: '-c TimeZone=UTC -c jit=off',
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

  /**
   * LISTEN on a connection of its own (a pooled one would be handed to other queries). If the
   * connection is lost it connects again, with back-off, and reports `onResumed`.
   */
  async listen(channel: string, notifications: Notifications): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    const connect = async (): Promise<void> => {
      const next = new pg.Client({
        connectionString: this.options.connectionString,
        application_name: `${this.options.applicationName ?? 'log-aggregator'}:listen`,
      });
      next.on('notification', (message) => {
        if (message.channel === channel) notifications.onNotify(message.payload ?? '');
      });
      next.on('error', () => undefined);
      try {
        await next.connect();
        await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      } catch (error) {
        await next.end().catch(() => undefined);
        throw error;
      }
      next.once('end', () => {
        if (!stopped) void reconnect();
      });
      client = next;
    };
    const reconnect = async (): Promise<void> => {
      client = undefined;
      for (let wait = 100; !stopped; wait = Math.min(wait * 2, LISTEN_RETRY_MAX_MS)) {
        await sleep(wait);
        try {
          await connect();
          // Stopped while reconnecting: this connection belongs to nobody.
          if (stopped) {
            await (client as pg.Client | undefined)?.end().catch(() => undefined);
            return;
          }
          notifications.onResumed();
          return;
        } catch (error) {
          this.options.onIdleError?.(error as Error);
        }
      }
    };
    try {
      await connect();
    } catch (error) {
      throw mapSqlError(error);
    }
    return async () => {
      stopped = true;
      await client?.end().catch(() => undefined);
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
