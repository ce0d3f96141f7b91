/**
 * The seam between the SQL store and a PostgreSQL engine. The PostgreSQL and PGlite backends run
 * the same SQL and differ only in the driver behind this interface (a pool, or one in-process
 * connection). Drivers map engine failures to the registry's errors in one place each.
 */

export interface SqlQueryable {
  /**
   * Runs one parameterised statement. `name` lets a driver keep a prepared statement for SQL that
   * runs on the hot path.
   */
  query<Row>(text: string, params?: readonly unknown[], name?: string): Promise<Row[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** What a LISTEN subscription reports. */
export interface Notifications {
  /** The payload of each NOTIFY on the channel, in commit order. */
  onNotify(payload: string): void;
  /**
   * The subscription was lost and is listening again: notifications sent meanwhile are gone, so
   * the subscriber should catch up from the data itself.
   */
  onResumed(): void;
}

export interface SqlDriver extends SqlQueryable {
  /** Runs `fn` inside BEGIN … COMMIT on one connection; rolls back if it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** LISTENs on `channel` until the returned function is called. */
  listen(channel: string, notifications: Notifications): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
