/**
 * A SQL statement of the store, named. The name sits next to the text so a reader (or a log
 * line, or `pg_prepared_statements`) can tell which statement is which; drivers that keep
 * prepared statements (pg) prepare a named one once per connection.
 */
import type { SqlQueryable } from '../sql-driver.js';

export interface Statement {
  /** Unique among the store's statements; `agg_` + what it does. */
  readonly name: string;
  /** Parameterised SQL (`$1`, `$2`, …); never built from values. */
  readonly text: string;
}

/** Runs `statement` on `db` under its name; resolves with its rows. */
export function run<Row>(
  db: SqlQueryable,
  statement: Statement,
  params: readonly unknown[] = [],
): Promise<Row[]> {
  return db.query<Row>(statement.text, params, statement.name);
}
