/**
 * The partitions of `events` (migration 0009): one per PARTITION_INTERVAL of event time, UTC, plus
 * the DEFAULT partition `events_default` for everything outside them.
 *
 * - Upkeep creates the partitions around now (PARTITION_WINDOWS) ahead of the events, so an
 *   apply never waits for DDL; an event whose partition does not exist lands in the default, and
 *   a partition created later takes its rows out of the default in the creating transaction.
 *   Bad timestamps (year 1, year 9999) stay in the default: they never create partitions.
 * - Retention drops partitions wholly older than its bound, counting `expired` per topic from the
 *   partition inside the dropping transaction, so the counters are exact at every commit.
 *
 * Every change runs under one advisory lock, so any number of processes may run the upkeep.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RETENTION_SHARD } from '../counter-shards.js';
import type { SqlDriver, SqlQueryable } from '../sql-driver.js';
import { run, type Statement } from './statement.js';

/** The lengths of partition PARTITION_INTERVAL may choose. */
export const PARTITION_INTERVALS = ['hour', 'day', 'week', 'month'] as const;
export type PartitionInterval = (typeof PARTITION_INTERVALS)[number];

/**
 * How many intervals before and after the current one the upkeep keeps created, and how far
 * back the start-up split of the default partition looks (intervals before the current one).
 */
export const PARTITION_WINDOWS: Readonly<
  Record<PartitionInterval, { back: number; ahead: number; split: number }>
> = {
  hour: { back: 24, ahead: 24, split: 24 * 62 },
  day: { back: 3, ahead: 3, split: 62 },
  week: { back: 2, ahead: 2, split: 27 },
  month: { back: 1, ahead: 2, split: 12 },
};

/** The default partition's name. */
export const DEFAULT_PARTITION = 'events_default';

/** Arbitrary constant naming the lock every partition change holds. */
const PARTITION_LOCK_KEY = 7_212_018;
/** How long a partition change waits for a table lock before giving up until the next run. */
const LOCK_TIMEOUT = '2s';
/**
 * How long the first attempts to detach wait for the table's exclusive lock, in ms. Waiting in
 * the lock queue holds up every apply behind it, so an attempt gives up soon and tries again
 * after a pause that lets the queue drain. The wait doubles every DETACH_ATTEMPTS_PER_WAIT
 * attempts (up to 1.6 s), so applies longer than the wait, always in flight, cannot starve it.
 */
const DETACH_WAIT_MS = 100;
const DETACH_ATTEMPTS_PER_WAIT = 8;
/** Attempts to detach before the pass gives up (the next pass starts over). */
const DETACH_ATTEMPTS = 40;
/** SQLSTATE lock_not_available: lock_timeout expired. */
const LOCK_NOT_AVAILABLE = '55P03';

/** Start of the interval holding `t` (UTC; weeks start on Monday). */
export function intervalStart(interval: PartitionInterval, t: Date): Date {
  const d = new Date(t.getTime());
  switch (interval) {
    case 'hour':
      d.setUTCMinutes(0, 0, 0);
      return d;
    case 'day':
      d.setUTCHours(0, 0, 0, 0);
      return d;
    case 'week': {
      d.setUTCHours(0, 0, 0, 0);
      d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
      return d;
    }
    case 'month':
      d.setUTCHours(0, 0, 0, 0);
      d.setUTCDate(1);
      return d;
    default: {
      const never: never = interval;
      throw new Error(`unknown partition interval ${String(never)}`);
    }
  }
}

/** `t` moved by `n` intervals (t an interval start). */
export function addIntervals(interval: PartitionInterval, t: Date, n: number): Date {
  const d = new Date(t.getTime());
  switch (interval) {
    case 'hour':
      d.setUTCHours(d.getUTCHours() + n);
      return d;
    case 'day':
      d.setUTCDate(d.getUTCDate() + n);
      return d;
    case 'week':
      d.setUTCDate(d.getUTCDate() + 7 * n);
      return d;
    case 'month':
      d.setUTCMonth(d.getUTCMonth() + n);
      return d;
    default: {
      const never: never = interval;
      throw new Error(`unknown partition interval ${String(never)}`);
    }
  }
}

/** A partition's name from its start: `events_p` + YYYYMMDDHH (UTC). */
export function partitionName(start: Date): string {
  const iso = start.toISOString();
  return `events_p${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}`;
}

/** A partition of events and its range of event time, [from, to). */
export interface PartitionRange {
  readonly name: string;
  readonly from: Date;
  readonly to: Date;
}

/** The range partitions of events (not the default), oldest first. */
export const LIST_PARTITIONS: Statement = {
  name: 'agg_list_partitions',
  text: `
SELECT name,
       (extract(epoch FROM b[1]::timestamptz) * 1000)::float8 AS from_ms,
       (extract(epoch FROM b[2]::timestamptz) * 1000)::float8 AS to_ms
FROM (
  SELECT c.relname::text AS name,
         regexp_match(pg_get_expr(c.relpartbound, c.oid),
                      'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS b
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'events'::regclass
) p
WHERE b IS NOT NULL
ORDER BY 2`,
};

export async function listPartitions(db: SqlQueryable): Promise<PartitionRange[]> {
  const rows = await run<{ name: string; from_ms: number; to_ms: number }>(db, LIST_PARTITIONS);
  return rows.map((r) => ({ name: r.name, from: new Date(r.from_ms), to: new Date(r.to_ms) }));
}

/** The parts of [from, to) no existing partition covers. */
export function freeRanges(
  from: Date,
  to: Date,
  existing: readonly PartitionRange[],
): { from: Date; to: Date }[] {
  let pieces = [{ from: from.getTime(), to: to.getTime() }];
  for (const p of existing) {
    const [a, b] = [p.from.getTime(), p.to.getTime()];
    pieces = pieces.flatMap((r) => {
      if (b <= r.from || a >= r.to) return [r];
      const out: { from: number; to: number }[] = [];
      if (a > r.from) out.push({ from: r.from, to: a });
      if (b < r.to) out.push({ from: b, to: r.to });
      return out;
    });
  }
  return pieces.map((r) => ({ from: new Date(r.from), to: new Date(r.to) }));
}

/** Settings of the partition upkeep. */
export interface PartitionUpkeep {
  readonly interval: PartitionInterval;
  /** Partitions wholly before this are never created (retention would drop them). */
  readonly notBefore?: Date | undefined;
  /**
   * Also create the partitions of past intervals that hold rows in the default partition (up to
   * PARTITION_WINDOWS.split intervals back): the start-up step after migration 0009.
   */
  readonly split?: boolean;
}

/**
 * Creates the missing partitions of the intervals around `now` (and, with `split`, of the past
 * intervals holding rows in the default partition), each in a transaction of its own that moves
 * its rows out of the default. Resolves with the names created. Safe to run from many processes.
 */
export async function createPartitions(
  driver: SqlDriver,
  upkeep: PartitionUpkeep,
  now: Date,
): Promise<string[]> {
  const { interval } = upkeep;
  const windows = PARTITION_WINDOWS[interval];
  const current = intervalStart(interval, now);
  const wanted = new Map<number, Date>();
  for (let i = -windows.back; i <= windows.ahead; i++) {
    const start = addIntervals(interval, current, i);
    wanted.set(start.getTime(), start);
  }
  if (upkeep.split === true) {
    for (const start of await defaultIntervals(driver, interval, current, windows.split)) {
      wanted.set(start.getTime(), start);
    }
  }
  const floor = upkeep.notBefore?.getTime();
  const starts = [...wanted.values()]
    .filter((s) => floor === undefined || addIntervals(interval, s, 1).getTime() > floor)
    .sort((a, b) => a.getTime() - b.getTime());
  // Nothing to do on almost every run: one catalog read, no lock.
  const existing = await listPartitions(driver);
  const missing = starts.flatMap((s) => freeRanges(s, addIntervals(interval, s, 1), existing));
  const created: string[] = [];
  for (const range of missing) {
    const name = await driver.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK_KEY]);
      // Another process may have created it meanwhile.
      const now = await listPartitions(tx);
      const [free] = freeRanges(range.from, range.to, now);
      if (free === undefined || free.from.getTime() !== range.from.getTime()) return undefined;
      return createPartition(tx, free.from, free.to);
    });
    if (name !== undefined) created.push(name);
  }
  return created;
}

/** Starts of the intervals (at most `back` before `current`, and after it) with rows in the default. */
async function defaultIntervals(
  db: SqlQueryable,
  interval: PartitionInterval,
  current: Date,
  back: number,
): Promise<Date[]> {
  const from = addIntervals(interval, current, -back);
  const to = addIntervals(interval, current, PARTITION_WINDOWS[interval].ahead + 1);
  const rows = await db.query<{ ms: number }>(
    `SELECT DISTINCT (extract(epoch FROM date_trunc($1, "timestamp", 'UTC')) * 1000)::float8 AS ms
     FROM ${DEFAULT_PARTITION} WHERE "timestamp" >= $2 AND "timestamp" < $3`,
    [interval, from, to],
  );
  // date_trunc('week') starts weeks on Monday, as intervalStart does.
  return rows.map((r) => new Date(r.ms));
}

/**
 * Creates partition [from, to) in the caller's transaction: a table like events, the rows of that
 * range moved out of the default partition (PostgreSQL refuses to attach a range the default
 * holds rows of), then attached. The default is locked against inserts first, so no row of the
 * range can arrive between the move and the attach; an apply routed to it waits that long.
 */
async function createPartition(tx: SqlQueryable, from: Date, to: Date): Promise<string> {
  const name = partitionName(from);
  await tx.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
  await tx.query(`LOCK TABLE ${DEFAULT_PARTITION} IN EXCLUSIVE MODE`);
  await tx.query(`CREATE TABLE ${name} (LIKE events INCLUDING DEFAULTS)`);
  await tx.query(
    `WITH moved AS (
       DELETE FROM ${DEFAULT_PARTITION} WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *
     )
     INSERT INTO ${name} SELECT * FROM moved`,
    [from, to],
  );
  // Bounds are literals in DDL; they come from Dates, never from input.
  await tx.query(
    `ALTER TABLE events ATTACH PARTITION ${name}
       FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
  );
  return name;
}

/** What dropping partitions removed. */
export interface DroppedPartitions {
  readonly partitions: number;
  /** Rows dropped, each counted as expired under its topic. */
  readonly events: number;
  /** Rows of kept topics moved to the default partition instead. */
  readonly kept: number;
  /**
   * The longest time, in ms, applies waited behind one drop's claim on the table's exclusive
   * lock: the longest detach attempt, from its start (queued for the lock) to its give-up, or to
   * the commit of the first step for the attempt that succeeded (the DROP TABLE comes after).
   * 0 when nothing was dropped.
   */
  readonly exclusiveMs: number;
}

/**
 * Detaches `name` from events in the caller's transaction, each attempt waiting for the table's
 * exclusive lock inside a savepoint (so the work done before it in the transaction stays): at
 * most DETACH_WAIT_MS at first, doubled every DETACH_ATTEMPTS_PER_WAIT attempts, up to
 * DETACH_ATTEMPTS with growing pauses between (about 40 s in all when every attempt fails).
 * Resolves with the longest failed attempt (ms) and when the successful one started
 * (performance.now()). Throws the lock error after the last attempt, or any other error at once.
 */
async function detachPartition(
  tx: SqlQueryable,
  name: string,
): Promise<{ longestFailedMs: number; startedAt: number }> {
  let longestFailedMs = 0;
  for (let attempt = 1; ; attempt++) {
    await tx.query('SAVEPOINT agg_detach');
    const waitMs = DETACH_WAIT_MS * 2 ** Math.floor((attempt - 1) / DETACH_ATTEMPTS_PER_WAIT);
    await tx.query(`SET LOCAL lock_timeout = '${waitMs}ms'`);
    const startedAt = performance.now();
    try {
      await tx.query(`ALTER TABLE events DETACH PARTITION ${name}`);
      await tx.query('RELEASE SAVEPOINT agg_detach');
      return { longestFailedMs, startedAt };
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      if (code !== LOCK_NOT_AVAILABLE || attempt >= DETACH_ATTEMPTS) throw error;
      longestFailedMs = Math.max(longestFailedMs, performance.now() - startedAt);
      await tx.query('ROLLBACK TO SAVEPOINT agg_detach');
      await sleep(Math.min(20 * attempt, 500));
    }
  }
}

/**
 * Tables left detached from `events` by a drop whose second step did not run (a crash between the
 * two): their rows were already counted as expired when they were detached.
 */
export const DETACHED_PARTITIONS: Statement = {
  name: 'agg_detached_partitions',
  text: `
SELECT c.relname::text AS name
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace
  AND c.relkind = 'r' AND NOT c.relispartition
  AND c.relname ~ '^events_p[0-9]{10}$'
ORDER BY 1`,
};

/**
 * Drops the partitions whose whole range is before `before`, each in two steps.
 *
 * The first is one transaction, the only one that touches `events`:
 * 1. the partition is locked against writes (a late event of its range waits), not the table;
 * 2. its rows are counted per topic and added to `expired` (retention shard);
 * 3. it is detached (this takes the table's exclusive lock until the commit: applies and reads
 *    wait for milliseconds, the catalogue change and the commit; an attempt queued behind a
 *    long transaction gives up after its wait, 100 ms at first (detachPartition), and tries
 *    again, so the applies queued behind it are held no longer than one attempt's wait), and the rows of `keepTopics`
 *    (topics retained longer, RETENTION_TOPIC_DAYS) are copied to the default partition, where
 *    their own retention deletes them row by row.
 *
 * The second drops the detached table, outside any lock on `events`: deleting gigabytes of files
 * takes seconds that nobody waits for. Counters match the rows at every commit: a crash before the
 * first commit rolls it back whole; a table a crash left detached is dropped at the next pass.
 * A lock not granted within LOCK_TIMEOUT (a long read holding the table) ends the pass; the next
 * one retries.
 */
export async function dropPartitions(
  driver: SqlDriver,
  before: Date,
  keepTopics: readonly string[],
): Promise<DroppedPartitions> {
  for (const { name } of await run<{ name: string }>(driver, DETACHED_PARTITIONS)) {
    await driver.query(`DROP TABLE IF EXISTS ${name}`);
  }
  const doomed = (await listPartitions(driver)).filter((p) => p.to.getTime() <= before.getTime());
  let partitions = 0;
  let events = 0;
  let kept = 0;
  let exclusiveMs = 0;
  for (const partition of doomed) {
    let detachedAt = 0;
    let longestFailedMs = 0;
    const result = await driver.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK_KEY]);
      const still = (await listPartitions(tx)).some((p) => p.name === partition.name);
      if (!still) return undefined;
      await tx.query(`SET LOCAL lock_timeout = '${LOCK_TIMEOUT}'`);
      await tx.query(`LOCK TABLE ${partition.name} IN SHARE MODE`);
      const [counted] = await tx.query<{ expired: number; kept: number }>(
        `WITH by_topic AS (
           SELECT topic, count(*) AS n, topic = ANY($1::text[]) AS keep
           FROM ${partition.name} GROUP BY topic
         ),
         counted AS (
           INSERT INTO topic_counters AS tc (topic, shard, expired)
           SELECT topic, ${RETENTION_SHARD}, n FROM by_topic WHERE NOT keep ORDER BY topic
           ON CONFLICT (topic, shard) DO UPDATE SET expired = tc.expired + excluded.expired
         )
         SELECT coalesce(sum(n) FILTER (WHERE NOT keep), 0)::float8 AS expired,
                coalesce(sum(n) FILTER (WHERE keep), 0)::float8 AS kept
         FROM by_topic`,
        [keepTopics],
      );
      const detach = await detachPartition(tx, partition.name);
      longestFailedMs = detach.longestFailedMs;
      detachedAt = detach.startedAt;
      if ((counted?.kept ?? 0) > 0) {
        await tx.query(
          `INSERT INTO events SELECT * FROM ${partition.name} WHERE topic = ANY($1::text[])`,
          [keepTopics],
        );
      }
      return counted;
    });
    if (result === undefined) continue;
    exclusiveMs = Math.max(exclusiveMs, longestFailedMs, performance.now() - detachedAt);
    await driver.query(`DROP TABLE IF EXISTS ${partition.name}`);
    partitions++;
    events += result.expired;
    kept += result.kept;
  }
  return { partitions, events, kept, exclusiveMs };
}
