/**
 * `npm run bench -- --growth --stored 0,10000000,20000000`: does ingest slow down as the store
 * grows, what does retention's partition drop cost, and how many bytes does a stored event take?
 *
 * One database for the whole run (PostgreSQL backends). For each size N, ascending:
 *
 * 1. the store is filled up to N events, written by SQL straight into event_keys, the day
 *    partitions of events and the counters (so /stats/verify stays true), spread over
 *    `--growth-days` days ending yesterday: far faster than the API, and the same rows;
 * 2. ingest: `--ingest-events` events (35% duplicates, event time now) published through the
 *    service and waited for until stored: events/s end to end;
 * 3. drop: while the same number of new events is being published, the oldest day partition is
 *    dropped by the store's retention step: total ms, and ms of the table's exclusive lock (what
 *    ingest waits for); then, drained, the counts must be exact: received = what was sent,
 *    rows in events = unique_processed - expired, and every /stats/verify equation holds;
 * 4. bytes per stored event: pg_total_relation_size of every events partition (table, indexes,
 *    TOAST) plus event_keys, divided by the rows of events.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { publishEvents } from '../src/cli/publisher.js';
import type { LogEvent } from '../src/log-event.js';
import { PgDriver } from '../src/store/postgres/pg-driver.js';
import { addIntervals, createPartitions, intervalStart } from '../src/store/sql/partitions.js';
import { SqlStore } from '../src/store/sql/sql-store.js';
import { RUNNERS, type ServiceUrls } from './backends.js';
import { deploy, type Deployment } from './deployment.js';
import type { GrowthResult, GrowthStep } from './growth-result.js';
import type { Backend } from './result.js';

export interface GrowthPlan {
  readonly backend: Backend;
  /** Store sizes to measure at, ascending. */
  readonly stored: readonly number[];
  /** Days the filler events span (one partition each). */
  readonly days: number;
  readonly ingestEvents: number;
  readonly urls: ServiceUrls;
  readonly nodeArgs: readonly string[];
  readonly log: (line: string) => void;
}

const FILL_CHUNK = 500_000;
/** Events per request and requests in flight of every ingest round. */
const INGEST_BATCH = 100;
const INGEST_CONCURRENCY = 20;
const TOPICS = 10;
const SOURCES = 50;
const DAY_MS = 86_400_000;

/** Fills event_keys, events and the counters with events [from, to) of `total`, in one statement. */
const FILL = `
WITH g AS (
  SELECT i, 'topic-' || (i % ${TOPICS}) AS topic, 'f' || i AS event_id,
         'host-' || (i % ${SOURCES}) AS source,
         $3::timestamptz + ((i::float8 / $4::float8) * $5::float8) * interval '1 millisecond' AS ts
  FROM generate_series($1::bigint, $2::bigint - 1) AS i
),
keyed AS (
  INSERT INTO event_keys (topic, event_id, content_hash, "timestamp")
  SELECT topic, event_id, i, ts FROM g
),
stored AS (
  INSERT INTO events (topic, event_id, "timestamp", source, payload)
  SELECT topic, event_id, ts, source,
         jsonb_build_object(
           'level', (ARRAY['info','info','info','warn','error'])[1 + i % 5],
           'msg', (ARRAY['checkout','payment','login','search'])[1 + i % 4] || ' ok after '
                  || (i * 37 % 5000) || 'ms',
           'req', 'req-' || substr(md5(i::text), 1, 8),
           'http', jsonb_build_object('status', (ARRAY[200,200,200,503,504])[1 + i % 5]),
           'client', jsonb_build_object('ip', '10.' || (i % 7) || '.' || (i % 251) || '.' || (i % 253)))
  FROM g
),
counted AS (
  INSERT INTO topic_counters AS tc (topic, shard, received, unique_processed)
  SELECT topic, 0, count(*), count(*) FROM g GROUP BY topic ORDER BY topic
  ON CONFLICT (topic, shard) DO UPDATE SET
    received = tc.received + excluded.received,
    unique_processed = tc.unique_processed + excluded.unique_processed
)
INSERT INTO dedup_stats AS ds (topic, source, shard, events, unique_events)
SELECT topic, source, 0, count(*), count(*) FROM g GROUP BY topic, source ORDER BY topic, source
ON CONFLICT (topic, source, shard) DO UPDATE SET
  events = ds.events + excluded.events,
  unique_events = ds.unique_events + excluded.unique_events`;

/** Events of one ingest round: `n` events, 35% of them copies of earlier ones, event time now. */
function ingestEvents(round: string, n: number): LogEvent[] {
  const unique = Math.round(n * 0.65);
  const now = Date.now();
  return Array.from({ length: n }, (_, k) => {
    const i = k < unique ? k : (k * 7919) % unique;
    return {
      topic: `topic-${i % TOPICS}`,
      event_id: `${round}-${i}`,
      timestamp: new Date(now - (i % 3_600_000)).toISOString(),
      source: `host-${i % SOURCES}`,
      payload: { level: 'info', msg: `live event ${i}`, req: `req-${round}-${i}` },
    };
  });
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

async function waitUntilStored(url: string, received: number): Promise<void> {
  for (;;) {
    const queue = await getJson<{ queue_size: number }>(`${url}/queue/stats`);
    const stats = await getJson<{ received: number }>(`${url}/stats`);
    if (queue.queue_size === 0 && stats.received >= received) return;
    await sleep(200);
  }
}

async function bytesPerEvent(db: PgDriver): Promise<{ rows: number; bytes: number }> {
  const [row] = await db.query<{ rows: number; bytes: number }>(
    `SELECT (SELECT count(*) FROM events)::float8 AS rows,
            ((SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i
              WHERE i.inhparent = 'events'::regclass)
             + pg_total_relation_size('event_keys'))::float8 AS bytes`,
  );
  return row ?? { rows: 0, bytes: 0 };
}

export async function runGrowth(plan: GrowthPlan): Promise<GrowthResult> {
  if (!plan.backend.startsWith('postgres')) {
    throw new Error('--growth runs on postgres-redis or postgres-inbox');
  }
  const { log } = plan;
  const runner = RUNNERS[plan.backend];
  const data = await runner.fresh(`growth_${randomUUID().slice(0, 8)}`, plan.urls);
  const databaseUrl = data.env.DATABASE_URL ?? '';
  const steps: GrowthStep[] = [];
  let deployment: Deployment | undefined;
  const db = new PgDriver({ connectionString: databaseUrl, poolSize: 2 });
  try {
    deployment = await deploy({
      env: { ...data.env, SEARCH_INDEX: 'on' },
      separateWorkers: runner.separateWorkers,
      workerProcesses: 1,
      nodeArgs: plan.nodeArgs,
    });
    await deployment.addWorkers();
    const url = deployment.url;
    const ingest = { url, batch: INGEST_BATCH, concurrency: INGEST_CONCURRENCY };
    const store = new SqlStore(db, 'postgres');
    // The filler spans `days` whole days ending yesterday, one partition a day.
    const end = intervalStart('day', new Date());
    const start = addIntervals('day', end, -plan.days);
    for (let d = 0; d < plan.days; d++) {
      await createPartitions(db, { interval: 'day' }, addIntervals('day', start, d));
    }
    let dropDay = start;
    let filled = 0;
    let sent = 0;
    let round = 0;
    const target = Math.max(...plan.stored);
    for (const n of [...plan.stored].sort((a, b) => a - b)) {
      while (filled < n) {
        const to = Math.min(n, filled + FILL_CHUNK);
        await db.query(FILL, [filled, to, start, target, plan.days * DAY_MS]);
        filled = to;
        log(`[growth] filled ${filled} / ${n}`);
      }
      await db.query('VACUUM ANALYZE events');
      await db.query('VACUUM ANALYZE event_keys');
      const before = await bytesPerEvent(db);
      log(`[growth] ${before.rows} stored: ingest of ${plan.ingestEvents} events…`);
      const first = ingestEvents(`r${round++}`, plan.ingestEvents);
      const received0 = (await getJson<{ received: number }>(`${url}/stats`)).received;
      const report = await publishEvents(first, ingest);
      sent += first.length;
      await waitUntilStored(url, received0 + first.length);
      const ingestPerSecond = first.length / ((performance.now() - report.startedAt) / 1000);

      // The drop, while the next round is being published.
      const partitions = await db.query<{ n: number }>(
        `SELECT count(*)::float8 AS n FROM events WHERE "timestamp" >= $1 AND "timestamp" < $2`,
        [dropDay, addIntervals('day', dropDay, 1)],
      );
      const dayRows = partitions[0]?.n ?? 0;
      let drop: GrowthStep['drop'];
      const second = ingestEvents(`r${round++}`, plan.ingestEvents);
      const received1 = (await getJson<{ received: number }>(`${url}/stats`)).received;
      const publishing = publishEvents(second, ingest);
      if (dayRows > 0) {
        await sleep(1000);
        const started = performance.now();
        const dropped = await store.dropPartitions(addIntervals('day', dropDay, 1), []);
        const totalMs = performance.now() - started;
        const during = await publishing;
        await waitUntilStored(url, received1 + second.length);
        drop = {
          rows: dropped.events,
          totalMs,
          exclusiveMs: dropped.exclusiveMs,
          ingestPerSecond: second.length / ((performance.now() - during.startedAt) / 1000),
        };
        log(`[growth] dropped ${dropped.events} rows in ${Math.round(totalMs)} ms`);
      } else {
        await publishing;
        await waitUntilStored(url, received1 + second.length);
      }
      sent += second.length;
      const stats = await getJson<{ received: number }>(`${url}/stats`);
      const verified = await getJson<{ consistent: boolean }>(`${url}/stats/verify`);
      // Every event sent was received once, every equation holds (no event lost or doubled).
      const countsExact = stats.received === filled + sent && verified.consistent;
      const after = await bytesPerEvent(db);
      steps.push({
        stored: before.rows,
        ingestPerSecond,
        ...(drop === undefined ? {} : { drop }),
        countsExact,
        bytesPerEvent: after.rows > 0 ? after.bytes / after.rows : 0,
      });
      // The next size drops the day after.
      if (drop !== undefined) dropDay = addIntervals('day', dropDay, 1);
    }
  } finally {
    await deployment?.stop();
    await db.close();
    await data.dispose();
  }
  return {
    backend: plan.backend,
    settings: {
      stored: [...plan.stored].sort((a, b) => a - b),
      days: plan.days,
      ingestEvents: plan.ingestEvents,
      batch: INGEST_BATCH,
      concurrency: INGEST_CONCURRENCY,
      // The service was deployed with SEARCH_INDEX=on.
      searchIndex: true,
    },
    steps,
    finishedAt: new Date().toISOString(),
  };
}
