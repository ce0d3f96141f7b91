/**
 * `npm run bench`: end-to-end throughput of the real service on this machine.
 *
 * For each backend combination it starts the built service as child processes on fresh data,
 * measures the raw PostgreSQL ceiling on the same events (sorted unnest INSERT … ON CONFLICT DO
 * NOTHING, 2 connections, batches of 1000), drives the workload (default 200,000 events, 35%
 * duplicates, batches of 100, 20 concurrent publishers), waits until every event is applied,
 * verifies the counts exactly, and prints one table. `--json` prints machine-readable results.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { Redis } from 'ioredis';
import pg from 'pg';
import { publishEvents, quantile } from '../src/cli/publisher.js';
import { makeWorkload } from '../src/cli/workload.js';
import type { LogEvent } from '../src/log-event.js';

type Backend = 'postgres-redis' | 'postgres-inbox' | 'pglite-inbox';

const ROOT = new URL('../', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'postgres-redis' },
    events: { type: 'string', default: '200000' },
    'dup-rate': { type: 'string', default: '0.35' },
    batch: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '20' },
    'worker-processes': { type: 'string', default: '1' },
    'worker-concurrency': { type: 'string', default: '2' },
    'worker-batch-messages': { type: 'string', default: '50' },
    rate: { type: 'string' },
    'database-url': {
      type: 'string',
      default: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    },
    'redis-url': {
      type: 'string',
      default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    },
    url: { type: 'string' },
    json: { type: 'boolean', default: false },
    'skip-ceiling': { type: 'boolean', default: false },
    backlog: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
  },
});

const total = Number(values.events);
const dupRate = Number(values['dup-rate']);
const batch = Number(values.batch);
const concurrency = Number(values.concurrency);
const workerProcesses = Number(values['worker-processes']);
/** Publish everything with no worker running, then start the workers and time the drain. */
const backlogMode = values.backlog;
const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

interface Result {
  backend: string;
  topology: string;
  events: number;
  duplicates: number;
  sendSeconds: number;
  sendEventsPerSecond: number;
  endToEndSeconds: number;
  endToEndEventsPerSecond: number;
  ceilingEventsPerSecond: number | null;
  ratioToCeiling: number | null;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  peakRssMb: number;
  /** --backlog: what waited before any worker ran; end to end is then the drain alone. */
  backlog?: { waitingEvents: number; apiPeakRssMb: number; redisUsedMemoryMb: number } | undefined;
  countsExact: boolean;
  retries: number;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise((r) => server.close(r));
  return port;
}

/** Resident set of a process in MB, from /proc (Linux). */
function rssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb === undefined ? 0 : Number(kb) / 1024;
  } catch {
    return 0;
  }
}

function sortedColumns(events: readonly LogEvent[]) {
  const seen = new Map<string, LogEvent>();
  for (const e of events) {
    const key = `${e.topic}\u0000${e.event_id}`;
    if (!seen.has(key)) seen.set(key, e);
  }
  return [...seen.values()].sort((a, b) =>
    a.topic === b.topic ? (a.event_id < b.event_id ? -1 : 1) : a.topic < b.topic ? -1 : 1,
  );
}

const CEILING_TABLE = `CREATE TABLE ceiling_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic text COLLATE "C" NOT NULL, event_id text COLLATE "C" NOT NULL, "timestamp" timestamptz NOT NULL,
  source text NOT NULL, payload jsonb NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (topic, event_id))`;
const CEILING_INDEX = `CREATE INDEX ON ceiling_events (topic, "timestamp" DESC, id DESC)`;
const CEILING_INSERT = `INSERT INTO ceiling_events (topic, event_id, "timestamp", source, payload)
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
  ON CONFLICT (topic, event_id) DO NOTHING`;

function ceilingBatches(events: readonly LogEvent[]) {
  // In-batch dedupe and a global key order, as the service does.
  const out: unknown[][] = [];
  for (let i = 0; i < events.length; i += 1000) {
    const slice = sortedColumns(events.slice(i, i + 1000));
    out.push([
      slice.map((e) => e.topic),
      slice.map((e) => e.event_id),
      slice.map((e) => e.timestamp),
      slice.map((e) => e.source),
      slice.map((e) => JSON.stringify(e.payload)),
    ]);
  }
  return out;
}

/** The raw PostgreSQL ceiling: the fastest plain batched insert of the same events. */
async function postgresCeiling(url: string, events: readonly LogEvent[]): Promise<number> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('DROP TABLE IF EXISTS ceiling_events');
  await setup.query(CEILING_TABLE);
  await setup.query(CEILING_INDEX);
  const batches = ceilingBatches(events);
  const clients = [
    new pg.Client({ connectionString: url }),
    new pg.Client({ connectionString: url }),
  ];
  await Promise.all(clients.map((c) => c.connect()));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      for (;;) {
        const params = batches[next++];
        if (params === undefined) return;
        for (;;) {
          try {
            await client.query({ name: 'ceiling', text: CEILING_INSERT, values: params });
            break;
          } catch (error) {
            if ((error as { code?: string }).code !== '40P01') throw error;
          }
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  await setup.query('DROP TABLE ceiling_events');
  await setup.end();
  return events.length / seconds;
}

async function pgliteCeiling(events: readonly LogEvent[]): Promise<number> {
  const db = await PGlite.create('memory://');
  await db.exec(CEILING_TABLE);
  await db.exec(CEILING_INDEX);
  const batches = ceilingBatches(events);
  const started = performance.now();
  for (const params of batches) await db.query(CEILING_INSERT, params);
  const seconds = (performance.now() - started) / 1000;
  await db.close();
  return events.length / seconds;
}

interface Deployment {
  url: string;
  processes: ChildProcess[];
  /** Starts the worker processes (the API process runs none). */
  addWorkers(): Promise<void>;
  stop(): Promise<void>;
}

async function deploy(
  backend: Backend,
  databaseUrl: string | undefined,
  redisPrefix: string,
  dataDir: string | undefined,
): Promise<Deployment> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: String(port),
    WORKER_CONCURRENCY: values['worker-concurrency'],
    WORKER_BATCH_MESSAGES: values['worker-batch-messages'],
  };
  // e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the service.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  if (databaseUrl !== undefined) env.DATABASE_URL = databaseUrl;
  if (dataDir !== undefined) env.DATA_DIR = dataDir;
  if (backend === 'postgres-redis') {
    env.REDIS_URL = values['redis-url'];
    env.REDIS_KEY_PREFIX = redisPrefix;
  }
  const processes: ChildProcess[] = [];
  const launch = (role: Record<string, string>) => {
    const child = spawn(process.execPath, [...nodeArgs, 'dist/main.js'], {
      cwd: ROOT,
      env: { ...env, ...role },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    processes.push(child);
  };
  launch({ ROLE: backend === 'pglite-inbox' ? 'all' : 'api' });
  const addWorkers = async () => {
    if (backend === 'pglite-inbox') return;
    for (let i = 0; i < workerProcesses; i++)
      launch({ ROLE: 'worker', INSTANCE_ID: `bench-w${i}` });
    // Give worker processes time to join before the clock starts.
    await sleep(1500);
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {
      // starting
    }
    if (Date.now() > deadline) throw new Error('service did not become healthy');
    await sleep(100);
  }
  return {
    url,
    processes,
    addWorkers,
    async stop() {
      await Promise.all(
        processes.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null) return resolve();
              p.once('exit', () => resolve());
              p.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

async function redisUsedMemoryMb(): Promise<number> {
  const redis = new Redis(values['redis-url']);
  const info = await redis.info('memory');
  redis.disconnect();
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 1024 / 1024;
}

async function runOne(backend: Backend): Promise<Result> {
  let backlogInfo: Result['backlog'];
  const id = randomUUID().slice(0, 8);
  const workload = makeWorkload({
    total,
    dupRate,
    topics: ['orders', 'auth', 'billing', 'search'],
    idPrefix: `bench-${id}`,
  });
  let databaseUrl: string | undefined;
  let dataDir: string | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  const redisPrefix = `bench-${id}`;
  if (backend !== 'pglite-inbox') {
    const admin = new pg.Client({ connectionString: values['database-url'] });
    await admin.connect();
    const name = `agg_bench_${id}`;
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    const url = new URL(values['database-url']);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    cleanups.push(async () => {
      const c = new pg.Client({ connectionString: values['database-url'] });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    });
  } else {
    dataDir = mkdtempSync(join(tmpdir(), 'agg-bench-'));
    cleanups.push(async () => rmSync(dataDir ?? '', { recursive: true, force: true }));
  }
  if (backend === 'postgres-redis') {
    cleanups.push(async () => {
      const redis = new Redis(values['redis-url']);
      await redis.del(`${redisPrefix}:stream`, `${redisPrefix}:depth`);
      redis.disconnect();
    });
  }
  try {
    let ceiling: number | null = null;
    if (!values['skip-ceiling']) {
      log(`[${backend}] measuring the raw insert ceiling on the same ${total} events…`);
      ceiling =
        databaseUrl !== undefined
          ? await postgresCeiling(databaseUrl, workload.events)
          : await pgliteCeiling(workload.events);
    }
    log(`[${backend}] starting the service…`);
    const deployment = await deploy(backend, databaseUrl, redisPrefix, dataDir);
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(
        peakRss,
        deployment.processes.reduce((sum, p) => sum + rssMb(p.pid), 0),
      );
    }, 100);
    try {
      log(
        `[${backend}] publishing ${total} events (${workload.duplicates} duplicates), batch ${batch}, ${concurrency} in flight…`,
      );
      if (!backlogMode) await deployment.addWorkers();
      const report = await publishEvents(workload.events, {
        url: deployment.url,
        batch,
        concurrency,
        rate: values.rate === undefined ? undefined : Number(values.rate),
      });
      // End to end runs from the first request sent (not from serialising the bodies before it).
      let started = report.startedAt;
      if (backlogMode) {
        const apiRss = peakRss;
        const queued = await getJson<{ queue_size: number }>(`${deployment.url}/queue/stats`);
        const redisMemory = await redisUsedMemoryMb();
        log(
          `[${backend}] backlog of ${queued.queue_size} events waiting; API process peak RSS ${apiRss.toFixed(0)} MB; Redis used_memory ${redisMemory.toFixed(0)} MB. Starting workers…`,
        );
        backlogInfo = {
          waitingEvents: queued.queue_size,
          apiPeakRssMb: apiRss,
          redisUsedMemoryMb: redisMemory,
        };
        started = performance.now();
        await deployment.addWorkers();
      }
      let stats = { received: 0, unique_processed: 0, duplicate_dropped: 0 };
      for (;;) {
        const queue = await getJson<{ queue_size: number }>(`${deployment.url}/queue/stats`);
        stats = await getJson<typeof stats>(`${deployment.url}/stats`);
        if (queue.queue_size === 0 && stats.received >= report.sentEvents) break;
        await sleep(20);
      }
      const endToEnd = (performance.now() - started) / 1000;
      const countsExact =
        report.failures.length === 0 &&
        stats.unique_processed === workload.unique &&
        stats.received === stats.unique_processed + stats.duplicate_dropped &&
        stats.received >= total;
      const e2eRate = total / endToEnd;
      return {
        backend,
        topology:
          backend === 'pglite-inbox'
            ? '1 process (all)'
            : `1 api + ${workerProcesses} worker process${workerProcesses > 1 ? 'es' : ''}`,
        events: total,
        duplicates: workload.duplicates,
        sendSeconds: report.elapsedMs / 1000,
        sendEventsPerSecond: report.sentEvents / (report.elapsedMs / 1000),
        endToEndSeconds: endToEnd,
        endToEndEventsPerSecond: e2eRate,
        ceilingEventsPerSecond: ceiling,
        ratioToCeiling: ceiling === null ? null : e2eRate / ceiling,
        p50Ms: quantile(report.latenciesMs, 0.5),
        p95Ms: quantile(report.latenciesMs, 0.95),
        p99Ms: quantile(report.latenciesMs, 0.99),
        peakRssMb: peakRss,
        backlog: backlogInfo,
        countsExact,
        retries: report.retries,
      };
    } finally {
      clearInterval(sampler);
      await deployment.stop();
    }
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}

function table(results: Result[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const rows = results.map((r) => [
    r.backend,
    r.topology,
    fmt(r.events),
    fmt(r.duplicates),
    fmt(r.sendEventsPerSecond),
    fmt(r.endToEndEventsPerSecond),
    r.ceilingEventsPerSecond === null ? '–' : fmt(r.ceilingEventsPerSecond),
    r.ratioToCeiling === null ? '–' : `${(r.ratioToCeiling * 100).toFixed(0)}%`,
    `${r.p50Ms.toFixed(1)} / ${r.p95Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)}`,
    r.peakRssMb.toFixed(0),
    r.countsExact ? 'yes' : 'NO',
  ]);
  const header = [
    'backend',
    'processes',
    'events',
    'duplicates',
    'send ev/s',
    'end-to-end ev/s',
    'ceiling ev/s',
    'vs ceiling',
    'publish p50/p95/p99 ms',
    'peak RSS MB',
    'counts exact',
  ];
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** The median of each backend's runs, with the spread, when a backend ran more than once. */
function spread(results: Result[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  // The run judged by targets() is this one: the lower middle of an even count.
  const median = (xs: number[]) => quantile(xs, 0.5);
  const header = [
    'backend',
    'runs',
    'end-to-end ev/s median (min–max)',
    'vs ceiling median (min–max)',
  ];
  const rows = [...new Set(results.map((r) => r.backend))].map((backend) => {
    const runs = results.filter((r) => r.backend === backend);
    const e2e = runs.map((r) => r.endToEndEventsPerSecond);
    const ratios = runs.flatMap((r) => (r.ratioToCeiling === null ? [] : [r.ratioToCeiling * 100]));
    const pct = (n: number) => `${n.toFixed(0)}%`;
    return [
      backend,
      String(runs.length),
      `${fmt(median(e2e))} (${fmt(Math.min(...e2e))}–${fmt(Math.max(...e2e))})`,
      ratios.length === 0
        ? '–'
        : `${pct(median(ratios))} (${pct(Math.min(...ratios))}–${pct(Math.max(...ratios))})`,
    ];
  });
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/**
 * The project's performance targets, judged on the median run of each backend. The throughput
 * and latency targets are defined for the default workload only; the memory target for a backlog
 * of at least 1,000,000 events.
 */
function targets(results: Result[]): string[] {
  const lines: string[] = [];
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const judge = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const defaultWorkload =
    total === 200_000 &&
    dupRate === 0.35 &&
    batch === 100 &&
    concurrency === 20 &&
    values.rate === undefined &&
    !backlogMode;
  for (const backend of new Set(results.map((r) => r.backend))) {
    const runs = results
      .filter((r) => r.backend === backend)
      .sort((a, b) => a.endToEndEventsPerSecond - b.endToEndEventsPerSecond);
    const r = runs[Math.floor((runs.length - 1) / 2)];
    if (r === undefined) continue;
    if (r.backlog !== undefined && r.backlog.waitingEvents >= 1_000_000) {
      const rss = r.backlog.apiPeakRssMb;
      lines.push(
        `${backend}: API process resident set < 300 MB with ${fmt(r.backlog.waitingEvents)} events waiting: ${rss.toFixed(0)} MB, ${judge(rss < 300)}`,
      );
    }
    if (!defaultWorkload) continue;
    if (backend === 'pglite-inbox') {
      const e2e = r.endToEndEventsPerSecond;
      lines.push(`${backend}: ≥ 20,000 events/s end to end: ${fmt(e2e)}, ${judge(e2e >= 20_000)}`);
      continue;
    }
    const e2e = r.endToEndEventsPerSecond;
    lines.push(`${backend}: ≥ 60,000 events/s end to end: ${fmt(e2e)}, ${judge(e2e >= 60_000)}`);
    if (r.ratioToCeiling !== null) {
      const pct = r.ratioToCeiling * 100;
      lines.push(`${backend}: ≥ 70% of the ceiling: ${pct.toFixed(0)}%, ${judge(pct >= 70)}`);
    }
    lines.push(
      `${backend}: publish p50 ≤ 10 ms and p99 ≤ 50 ms: ${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)} ms, ${judge(r.p50Ms <= 10 && r.p99Ms <= 50)}`,
    );
  }
  return lines;
}

// Repeated runs take turns across the backends, so a slow spell of the machine is shared.
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be a whole number ≥ 1');
const results: Result[] = [];
for (let run = 0; run < repeat; run++) {
  for (const backend of values.backends.split(',') as Backend[]) {
    results.push(await runOne(backend));
  }
}
if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
else {
  process.stdout.write(`${table(results)}\n`);
  if (repeat > 1) process.stdout.write(`\n${spread(results)}\n`);
  for (const r of results) {
    if (r.backlog === undefined) continue;
    process.stdout.write(
      `\n${r.backend} backlog: ${r.backlog.waitingEvents.toLocaleString('en-US')} events waited with no worker running; API process peak RSS ${r.backlog.apiPeakRssMb.toFixed(0)} MB, Redis used_memory ${r.backlog.redisUsedMemoryMb.toFixed(0)} MB; the drain took ${r.endToEndSeconds.toFixed(1)} s (${Math.round(r.endToEndEventsPerSecond).toLocaleString('en-US')} events/s; end-to-end column = drain only)\n`,
    );
  }
  const judged = targets(results);
  if (judged.length > 0) {
    process.stdout.write(
      `\nTargets (median run of each backend):\n${judged.map((l) => `- ${l}\n`).join('')}`,
    );
  }
}
process.exit(results.every((r) => r.countsExact) ? 0 : 1);
