/**
 * Reads what a service really stored, straight from its database (not through the API), so a
 * fault test can check the invariants itself: every key stored once, counters that add up per
 * topic, an empty queue table.
 */
import type { LogEvent } from '../../src/log-event.js';
import { PgliteDriver } from '../../src/store/pglite/pglite-driver.js';
import { PgDriver } from '../../src/store/postgres/pg-driver.js';
import type { SqlQueryable } from '../../src/store/sql-driver.js';

export interface TopicFigures {
  readonly rows: number;
  readonly received: number;
  readonly uniqueProcessed: number;
  readonly duplicateDropped: number;
}

export interface StoredState {
  /** Rows in `events`. */
  readonly rows: number;
  /** Distinct `(topic, event_id)` among them. */
  readonly distinctKeys: number;
  /** Every stored key, as `keyOf` renders it. */
  readonly keys: ReadonlySet<string>;
  readonly topics: ReadonlyMap<string, TopicFigures>;
  readonly received: number;
  readonly uniqueProcessed: number;
  readonly duplicateDropped: number;
  /** Messages still waiting in the inbox table. */
  readonly inboxMessages: number;
}

export function keyOf(event: Pick<LogEvent, 'topic' | 'event_id'>): string {
  return `${event.topic}\u0001${event.event_id}`;
}

export function keysOf(events: readonly Pick<LogEvent, 'topic' | 'event_id'>[]): Set<string> {
  return new Set(events.map(keyOf));
}

export async function readStoredState(db: SqlQueryable): Promise<StoredState> {
  const rows = await db.query<{ topic: string; event_id: string }>(
    'SELECT topic, event_id FROM events',
  );
  const keys = new Set(rows.map(keyOf));
  const perTopicRows = await db.query<{ topic: string; n: number }>(
    'SELECT topic, count(*)::float8 AS n FROM events GROUP BY topic',
  );
  const counters = await db.query<{ topic: string; r: number; u: number; d: number }>(
    `SELECT topic, sum(received)::float8 AS r, sum(unique_processed)::float8 AS u,
            sum(duplicate_dropped)::float8 AS d
     FROM topic_counters GROUP BY topic`,
  );
  const inbox = await db.query<{ n: number }>('SELECT count(*)::float8 AS n FROM inbox');
  const topics = new Map<string, TopicFigures>();
  const rowsOf = new Map(perTopicRows.map((r) => [r.topic, r.n]));
  for (const topic of new Set([...rowsOf.keys(), ...counters.map((c) => c.topic)])) {
    const c = counters.find((x) => x.topic === topic);
    topics.set(topic, {
      rows: rowsOf.get(topic) ?? 0,
      received: c?.r ?? 0,
      uniqueProcessed: c?.u ?? 0,
      duplicateDropped: c?.d ?? 0,
    });
  }
  const sum = (pick: (t: TopicFigures) => number) =>
    [...topics.values()].reduce((n, t) => n + pick(t), 0);
  return {
    rows: rows.length,
    distinctKeys: keys.size,
    keys,
    topics,
    received: sum((t) => t.received),
    uniqueProcessed: sum((t) => t.uniqueProcessed),
    duplicateDropped: sum((t) => t.duplicateDropped),
    inboxMessages: inbox[0]?.n ?? 0,
  };
}

/** Reads the state of a PostgreSQL database. */
export async function readPostgresState(url: string): Promise<StoredState> {
  const driver = new PgDriver({ connectionString: url, poolSize: 1 });
  try {
    return await readStoredState(driver);
  } finally {
    await driver.close();
  }
}

/** Reads the state of a PGlite directory; the service that owns it must be stopped first. */
export async function readPgliteState(dataDir: string): Promise<StoredState> {
  const driver = await PgliteDriver.open(dataDir);
  try {
    return await readStoredState(driver);
  } finally {
    await driver.close();
  }
}

/** Keys of `expected` that are not stored. */
export function missingKeys(stored: StoredState, expected: ReadonlySet<string>): string[] {
  return [...expected].filter((k) => !stored.keys.has(k));
}
