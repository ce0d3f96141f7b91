/**
 * `npm run bench -- --read --stored 10000000`: read latency on a large store, and what search
 * costs ingest.
 *
 * 1. The store, named after its size: a PostgreSQL database `agg_bench_read_<stored>`, or with
 *    pglite-inbox a PGlite directory of that name under the OS temporary directory. Its day
 *    partitions are created for the span, it is loaded through the service (POST /publish, queue,
 *    workers) with generated log lines, and reused as it is when a later run finds it full
 *    (deterministic event ids: an interrupted load resumes, its repeats are duplicates).
 *    `--fresh-store` drops it first. Its events and search granules are `VACUUM ANALYZE`d before
 *    the reads, as autovacuum would have done by then (a PGlite directory opens in one process at
 *    a time: the service is stopped for it and started again).
 * 2. Each query shape of GET /events and /events/histogram (docs/search.md), `--read-repeat` times
 *    with varying parameters, one request at a time: p50 and p99 in ms.
 * 3. Ingest with SEARCH_INDEX=on and =off: the same `--ingest-events` events into a fresh
 *    database (PGlite directory) each run, end to end (published until stored), events/s;
 *    `--ingest-rounds` rounds of four runs, on, off, off, on, and the mean of each setting.
 *
 * Backends: postgres-redis, postgres-inbox, pglite-inbox.
 */
import { quantile, publishEvents } from '../src/cli/publisher.js';
import type { LogEvent } from '../src/log-event.js';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate } from '../src/store/migrate.js';
import { PgliteDriver } from '../src/store/pglite/pglite-driver.js';
import { PgDriver } from '../src/store/postgres/pg-driver.js';
import type { SqlDriver } from '../src/store/sql-driver.js';
import { createPartitions } from '../src/store/sql/partitions.js';
import { RUNNERS, type ServiceUrls } from './backends.js';
import { deploy, type Deployment } from './deployment.js';
import type { Backend } from './result.js';

export interface ReadPlan {
  readonly backend: Backend;
  readonly stored: number;
  readonly repeat: number;
  readonly ingestEvents: number;
  /** Rounds of ingest runs, each on, off, off, on (INGEST_ROUND). */
  readonly ingestRounds: number;
  readonly freshStore: boolean;
  readonly urls: ServiceUrls;
  readonly nodeArgs: readonly string[];
  readonly log: (line: string) => void;
}

export interface ShapeResult {
  readonly shape: string;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Rows in the answers, summed: a shape that found nothing measured nothing. */
  readonly rows: number;
}

export interface ReadResult {
  readonly backend: Backend;
  readonly stored: number;
  readonly shapes: readonly ShapeResult[];
  readonly ingest: {
    /** Mean events/s of the runs with SEARCH_INDEX=on. */
    readonly searchOn: number;
    /** Mean events/s of the runs with SEARCH_INDEX=off. */
    readonly searchOff: number;
    /** Each run's events/s, in the order run. */
    readonly runsOn: readonly number[];
    readonly runsOff: readonly number[];
    readonly events: number;
  };
  readonly finishedAt: string;
}

const TOPICS = 10;
const SOURCES = 50;
/** The stored events span this long, ending at the load's start day. */
const SPAN_MS = 30 * 86_400_000;
/**
 * The stored events end at this instant: the start of the day (UTC) the store was loaded, so its
 * newest events are recent, as a log store's are (newest-first listings look at recent days
 * first). A reused store keeps its own: runRead reads it back.
 */
let END_MS = Math.floor(Date.now() / 86_400_000) * 86_400_000;
const WORDS = ['checkout', 'payment', 'login', 'search', 'upload', 'export', 'refund', 'invoice'];
const OUTCOMES = ['ok', 'ok', 'ok', 'ok', 'slow', 'retry', 'timeout', 'refused'];
const LOAD_CHUNK = 200_000;

/** A token unique to event i: what a person pastes from one log line (1 match). */
export const requestToken = (i: number) =>
  `req-${(Math.imul(i + 1, 2_654_435_761) >>> 0).toString(16).padStart(8, '0')}`;

/** Event i of a store of `stored` events: deterministic, so a store can be reloaded or resumed. */
export function readEvent(i: number, stored: number): LogEvent {
  const word = WORDS[i % WORDS.length] as string;
  const outcome = OUTCOMES[Math.floor(i / 7) % OUTCOMES.length] as string;
  return {
    topic: `topic-${i % TOPICS}`,
    event_id: `e${i}`,
    timestamp: new Date(END_MS - SPAN_MS + Math.floor((i * SPAN_MS) / stored)).toISOString(),
    source: `host-${i % SOURCES}`,
    payload: {
      level: outcome === 'ok' ? 'info' : outcome === 'slow' ? 'warn' : 'error',
      msg: `${word} ${outcome} after ${(i * 37) % 5000}ms`,
      req: requestToken(i),
      http: { status: outcome === 'ok' ? 200 : outcome === 'refused' ? 503 : 504 },
      client: { ip: `10.${i % 7}.${i % 251}.${i % 253}` },
    },
  };
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

async function waitUntilStored(url: string, sent: number): Promise<void> {
  for (;;) {
    const queue = await getJson<{ queue_size: number }>(`${url}/queue/stats`);
    const stats = await getJson<{ received: number }>(`${url}/stats`);
    if (queue.queue_size === 0 && stats.received >= sent) return;
    await sleep(200);
  }
}

async function start(plan: ReadPlan, env: Record<string, string>): Promise<Deployment> {
  const runner = RUNNERS[plan.backend];
  const deployment = await deploy({
    env,
    separateWorkers: runner.separateWorkers,
    workerProcesses: 1,
    nodeArgs: plan.nodeArgs,
  });
  await deployment.addWorkers();
  return deployment;
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The store the reads run on, kept between runs, and how the benchmark reaches its SQL. */
interface ReadStore {
  /** Where it is, for the log: the database or the directory. */
  readonly where: string;
  /** The service's environment for it (the backend part). */
  readonly env: Readonly<Record<string, string>>;
  /**
   * Only one process at a time may open it (a PGlite directory): the service is stopped while
   * the benchmark runs SQL on it.
   */
  readonly exclusive: boolean;
  /** A connection of the benchmark's own, closed by the caller. */
  open(): Promise<SqlDriver>;
}

/**
 * The store of `plan.stored` events, created if missing (emptied first with `--fresh-store`): a
 * PostgreSQL database `agg_bench_read_<stored>`, or for PGlite a directory of that name under the
 * temporary directory.
 */
async function readStore(plan: ReadPlan): Promise<ReadStore> {
  const name = `agg_bench_read_${plan.stored}`;
  if (plan.backend === 'pglite-inbox') {
    const dir = join(tmpdir(), name);
    if (plan.freshStore) rmSync(dir, { recursive: true, force: true });
    return {
      where: dir,
      env: { DATA_DIR: dir },
      exclusive: true,
      open: () => PgliteDriver.open(dir),
    };
  }
  if (plan.backend !== 'postgres-redis' && plan.backend !== 'postgres-inbox') {
    throw new Error('--read runs on postgres-redis, postgres-inbox or pglite-inbox');
  }
  const url = databaseUrl(plan.urls.databaseUrl, name);
  await admin(plan.urls.databaseUrl, async (c) => {
    if (plan.freshStore) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await c.query(`CREATE DATABASE "${name}"`);
  });
  const env: Record<string, string> = { DATABASE_URL: url };
  if (plan.backend === 'postgres-redis') {
    env.REDIS_URL = plan.urls.redisUrl;
    env.REDIS_KEY_PREFIX = `bench-read-${plan.stored}`;
  }
  return {
    where: name,
    env,
    exclusive: false,
    open: async () => new PgDriver({ connectionString: url, poolSize: 1 }),
  };
}

async function withSql<T>(store: ReadStore, fn: (db: SqlDriver) => Promise<T>): Promise<T> {
  const db = await store.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/**
 * The day partitions of the stored span (in the past: the service's upkeep creates only the days
 * around now, older events would all land in the default partition).
 */
async function createSpanPartitions(db: SqlDriver): Promise<void> {
  for (let t = END_MS - SPAN_MS; t <= END_MS; t += 86_400_000) {
    await createPartitions(db, { interval: 'day' }, new Date(t));
  }
}

/** Publishes events [from, to) of the store in chunks, through the service. */
async function load(plan: ReadPlan, url: string, from: number): Promise<void> {
  const started = performance.now();
  for (let i = from; i < plan.stored; i += LOAD_CHUNK) {
    const chunk = Array.from({ length: Math.min(LOAD_CHUNK, plan.stored - i) }, (_, k) =>
      readEvent(i + k, plan.stored),
    );
    await publishEvents(chunk, { url, batch: 500, concurrency: 8 });
    const done = i + chunk.length;
    const rate = (done - from) / ((performance.now() - started) / 1000);
    plan.log(`  loaded ${done} / ${plan.stored} (${Math.round(rate)} events/s)`);
  }
  await waitUntilStored(url, plan.stored - from);
}

/** One query shape: a name and the request path of its n-th run. */
interface Shape {
  readonly name: string;
  path(n: number): string;
  /** Follows the cursor of the first page this many times and times those pages instead. */
  readonly cursorPages?: number;
}

function shapes(stored: number): Shape[] {
  const topic = (n: number) => `topic-${n % TOPICS}`;
  const day = (n: number) => new Date(END_MS - SPAN_MS + ((n * 86_400_000) % SPAN_MS));
  const iso = (d: Date) => d.toISOString();
  const rare = (n: number) => requestToken((n * 7_919_993) % stored);
  const q = (s: string) => encodeURIComponent(s);
  return [
    { name: 'newest first, one topic', path: (n) => `/events?topic=${topic(n)}&limit=100` },
    { name: 'newest first, all topics', path: () => `/events?limit=100` },
    { name: 'by source', path: (n) => `/events?source=host-${n % SOURCES}&limit=100` },
    {
      name: 'by time range (1 h), one topic',
      path: (n) =>
        `/events?topic=${topic(n)}&since=${iso(day(n))}&until=${iso(new Date(day(n).getTime() + 3_600_000))}&limit=100`,
    },
    {
      name: 'cursor pages 2-6, one topic',
      path: (n) => `/events?topic=${topic(n)}&limit=100`,
      cursorPages: 5,
    },
    {
      name: 'deep offset (10,000), one topic',
      path: (n) => `/events?topic=${topic(n)}&limit=100&offset=10000`,
    },
    { name: 'search: a rare token (1 match)', path: (n) => `/events?q=${q(rare(n))}&limit=100` },
    {
      name: 'search: two words in a topic',
      path: (n) =>
        `/events?topic=${topic(n)}&q=${q(`${WORDS[n % WORDS.length] as string} ${OUTCOMES[4 + (n % 4)] as string}`)}&limit=100`,
    },
    {
      name: 'field: level=error in a topic',
      path: (n) => `/events?topic=${topic(n)}&field.level=error&limit=100`,
    },
    { name: 'field: a rare value', path: (n) => `/events?field.req=${q(rare(n))}&limit=100` },
    {
      name: 'histogram: 24 hourly buckets, one topic',
      path: (n) =>
        `/events/histogram?topic=${topic(n)}&interval=1h&since=${iso(day(n))}&until=${iso(new Date(day(n).getTime() + 86_400_000))}`,
    },
    {
      // What the explorer asks with every search: the counts of a word over a day, every topic.
      name: 'histogram of a word (1 in 8 events), a day, all topics',
      path: (n) =>
        `/events/histogram?q=${WORDS[n % WORDS.length] as string}&interval=1h&since=${iso(day(n))}&until=${iso(new Date(day(n).getTime() + 86_400_000))}`,
    },
  ];
}

async function timed(url: string): Promise<{ ms: number; rows: number; cursor: string | null }> {
  const started = performance.now();
  const response = await fetch(url);
  const body = await response.json();
  const ms = performance.now() - started;
  if (!response.ok) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  const rows = Array.isArray(body)
    ? body.length
    : ((body as { buckets?: { count: number }[] }).buckets ?? []).reduce((s, b) => s + b.count, 0);
  return { ms, rows, cursor: response.headers.get('x-next-cursor') };
}

async function measureShape(base: string, shape: Shape, repeat: number): Promise<ShapeResult> {
  const latencies: number[] = [];
  let rows = 0;
  // A few unmeasured runs first: connections, plans and caches warm.
  for (let n = 0; n < Math.min(5, repeat); n++) await timed(`${base}${shape.path(n + repeat)}`);
  for (let n = 0; n < repeat; n++) {
    const first = await timed(`${base}${shape.path(n)}`);
    if (shape.cursorPages === undefined) {
      latencies.push(first.ms);
      rows += first.rows;
      continue;
    }
    let cursor = first.cursor;
    for (let p = 0; p < shape.cursorPages && cursor !== null; p++) {
      const sep = shape.path(n).includes('?') ? '&' : '?';
      const page = await timed(`${base}${shape.path(n)}${sep}after=${encodeURIComponent(cursor)}`);
      latencies.push(page.ms);
      rows += page.rows;
      cursor = page.cursor;
    }
  }
  return {
    shape: shape.name,
    requests: latencies.length,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    rows,
  };
}

/** A round of ingest runs, in this order. */
const INGEST_ROUND = ['on', 'off', 'off', 'on'] as const;

/** Events/s end to end into a fresh database with SEARCH_INDEX as given. */
async function ingestRate(plan: ReadPlan, searchIndex: 'on' | 'off'): Promise<number> {
  const runId = `${randomUUID().slice(0, 8)}_${searchIndex}`;
  const data = await RUNNERS[plan.backend].fresh(runId, plan.urls);
  try {
    const deployment = await start(plan, { ...data.env, SEARCH_INDEX: searchIndex });
    try {
      const events = Array.from({ length: plan.ingestEvents }, (_, i) =>
        readEvent(i, plan.ingestEvents),
      );
      const report = await publishEvents(events, {
        url: deployment.url,
        batch: 100,
        concurrency: 20,
      });
      await waitUntilStored(deployment.url, events.length);
      return events.length / ((performance.now() - report.startedAt) / 1000);
    } finally {
      await deployment.stop();
    }
  } finally {
    await data.dispose();
  }
}

export async function runRead(plan: ReadPlan): Promise<ReadResult> {
  const { log } = plan;
  const store = await readStore(plan);
  const env = { ...store.env, SEARCH_INDEX: 'on' };
  // Before the service starts (a PGlite directory opens in one process at a time): the schema,
  // the span of a store loaded before, and the day partitions of the span.
  await withSql(store, async (db) => {
    await migrate(db);
    // A store loaded before keeps its end: its oldest event lies in the span's first day however
    // much of it was loaded (an interrupted load's newest event would move the end back).
    const [row] = await db.query<{ ms: number | null }>(
      `SELECT (extract(epoch FROM min("timestamp")) * 1000)::float8 AS ms FROM events`,
    );
    if (row?.ms !== undefined && row.ms !== null) {
      END_MS = Math.floor((row.ms + SPAN_MS) / 86_400_000) * 86_400_000;
    }
    await createSpanPartitions(db);
  });
  log(`[read] starting the service on ${store.where}…`);
  let deployment = await start(plan, env);
  let shapesMeasured: ShapeResult[];
  try {
    const stats = await getJson<{ unique_processed: number }>(`${deployment.url}/stats`);
    if (stats.unique_processed >= plan.stored) {
      log(`[read] reusing the store: ${stats.unique_processed} events stored`);
    } else {
      // Ids are deterministic: resuming from what is stored repeats at most the last chunk.
      const from = Math.floor(stats.unique_processed / LOAD_CHUNK) * LOAD_CHUNK;
      log(`[read] loading ${plan.stored - from} events through the service…`);
      await load(plan, deployment.url, from);
    }
    if (store.exclusive) await deployment.stop();
    await withSql(store, (db) => db.exec('VACUUM ANALYZE events, event_granules'));
    if (store.exclusive) deployment = await start(plan, env);
    shapesMeasured = [];
    for (const shape of shapes(plan.stored)) {
      log(`[read] ${shape.name}…`);
      shapesMeasured.push(await measureShape(deployment.url, shape, plan.repeat));
    }
  } finally {
    await deployment.stop();
  }
  // On, off, off, on: a drift of the machine's speed over a round weighs on both settings alike;
  // more rounds, for a machine whose speed wanders more than that (docs/benchmarks.md).
  log(
    `[read] ingest of ${plan.ingestEvents} events, ${plan.ingestRounds} × SEARCH_INDEX=${INGEST_ROUND.join(', ')}…`,
  );
  const runs: Record<'on' | 'off', number[]> = { on: [], off: [] };
  for (let round = 0; round < plan.ingestRounds; round++) {
    for (const setting of INGEST_ROUND) runs[setting].push(await ingestRate(plan, setting));
  }
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    backend: plan.backend,
    stored: plan.stored,
    shapes: shapesMeasured,
    ingest: {
      searchOn: mean(runs.on),
      searchOff: mean(runs.off),
      runsOn: runs.on,
      runsOff: runs.off,
      events: plan.ingestEvents,
    },
    finishedAt: new Date().toISOString(),
  };
}

/** The targets of issue 16, by shape name prefix: p99 at most this many ms. */
const TARGETS: readonly [string, number][] = [
  ['newest first', 20],
  ['by source', 20],
  ['by time range', 20],
  ['cursor pages', 20],
  ['search: a rare token', 100],
  ['search: two words', 200],
  ['histogram: 24 hourly', 200],
];

const rates = (runs: readonly number[]) => runs.map((r) => Math.round(r)).join(' and ');

export function readReport(result: ReadResult): string {
  const lines = [
    `Read benchmark: ${result.backend}, ${result.stored} events stored`,
    '',
    '| query shape | requests | p50 ms | p99 ms | rows | target p99 |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const s of result.shapes) {
    const target = TARGETS.find(([prefix]) => s.shape.startsWith(prefix))?.[1];
    const verdict =
      target === undefined ? '' : `≤ ${target} ms ${s.p99Ms <= target ? 'met' : 'MISSED'}`;
    lines.push(
      `| ${s.shape} | ${s.requests} | ${s.p50Ms.toFixed(1)} | ${s.p99Ms.toFixed(1)} | ${s.rows} | ${verdict} |`,
    );
  }
  const ratio = result.ingest.searchOn / result.ingest.searchOff;
  lines.push(
    '',
    `Ingest of ${result.ingest.events} events, end to end, ${result.ingest.runsOn.length / 2} × runs in the order ${INGEST_ROUND.join(', ')}: SEARCH_INDEX=on ${Math.round(result.ingest.searchOn)} events/s (${rates(result.ingest.runsOn)}), off ${Math.round(result.ingest.searchOff)} events/s (${rates(result.ingest.runsOff)}): on/off ${(ratio * 100).toFixed(0)}%, target ≥ 85% ${ratio >= 0.85 ? 'met' : 'MISSED'}`,
    '',
  );
  return lines.join('\n');
}
