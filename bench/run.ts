/**
 * `npm run bench`: end-to-end throughput of the real service on this machine.
 *
 * For each backend combination it starts the built service as child processes on fresh data,
 * measures the raw insert ceiling on the same events (bench/ceiling.ts), drives the workload
 * (default 200,000 events, 35% duplicates, batches of 100, 20 concurrent publishers), waits until
 * every event is applied, verifies the counts exactly (bench/measure.ts), and prints the tables
 * and the targets (bench/report.ts). `--json` prints the results as bench/result.ts describes
 * them; saved under bench/results/, `npm run bench:docs` renders them into docs/benchmarks.md.
 *
 * `--idle-latency` measures instead how soon one event published to an idle service becomes
 * readable (bench/idle-latency.ts): `--samples` events (default 20), one every `--interval-ms`
 * (default 1000).
 *
 * `--read --stored N` measures reads on a store of N events instead (bench/read.ts).
 *
 * `--growth --stored 0,10000000,20000000` measures ingest, a partition drop and bytes per event
 * as the store grows, in one database (bench/growth.ts); `--json` prints the result as
 * bench/growth-result.ts describes it, which `npm run bench:docs` renders from bench/results/ too.
 */
import { parseArgs } from 'node:util';
import { FORMATS, isFormat, type Format } from './formats.js';
import { idleLatencyReport, runIdleLatency, type IdleLatencyResult } from './idle-latency.js';
import { runOne } from './measure.js';
import { textReport } from './report.js';
import { BACKENDS, type Backend, type BenchResult } from './result.js';
import { DEFAULT_WORKLOAD } from './workload.js';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'postgres-redis' },
    events: { type: 'string', default: String(DEFAULT_WORKLOAD.events) },
    'dup-rate': { type: 'string', default: String(DEFAULT_WORKLOAD.dupRate) },
    batch: { type: 'string', default: String(DEFAULT_WORKLOAD.batch) },
    concurrency: { type: 'string', default: String(DEFAULT_WORKLOAD.concurrency) },
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
    json: { type: 'boolean', default: false },
    'skip-ceiling': { type: 'boolean', default: false },
    backlog: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
    // Comma list of wire formats (bench/formats.ts), each run on every backend.
    format: { type: 'string', default: 'envelope' },
    // Comma list of SEARCH_INDEX settings (on, off), each run on every backend and format.
    'search-index': { type: 'string', default: 'on' },
    // Before each shipper format, the envelope carrying the rows that format stores.
    'same-rows': { type: 'boolean', default: false },
    'idle-latency': { type: 'boolean', default: false },
    samples: { type: 'string', default: '20' },
    'interval-ms': { type: 'string', default: '1000' },
    // Read benchmark (bench/read.ts).
    read: { type: 'boolean', default: false },
    stored: { type: 'string', default: '10000000' },
    'read-repeat': { type: 'string', default: '200' },
    'ingest-events': { type: 'string', default: '200000' },
    'ingest-rounds': { type: 'string', default: '2' },
    'fresh-store': { type: 'boolean', default: false },
    // Growth benchmark (bench/growth.ts).
    growth: { type: 'boolean', default: false },
    'growth-days': { type: 'string', default: '10' },
  },
});

// e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the service.
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

if (values.growth) {
  const { runGrowth } = await import('./growth.js');
  const { growthReport } = await import('./growth-result.js');
  const stored = values.stored.split(',').map(Number);
  if (stored.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new Error('--stored: whole numbers ≥ 0, comma-separated');
  }
  const days = Number(values['growth-days']);
  if (!Number.isInteger(days) || days < 1) throw new Error('--growth-days must be ≥ 1');
  const result = await runGrowth({
    backend: values.backends.split(',')[0] as Backend,
    stored,
    days,
    ingestEvents: Number(values['ingest-events']),
    urls: { databaseUrl: values['database-url'], redisUrl: values['redis-url'] },
    nodeArgs,
    log,
  });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : growthReport(result));
  process.exit(0);
}

if (values.read) {
  const { readReport, runRead } = await import('./read.js');
  const ingestRounds = Number(values['ingest-rounds']);
  if (!Number.isInteger(ingestRounds) || ingestRounds < 1) {
    throw new Error('--ingest-rounds must be a whole number ≥ 1');
  }
  const result = await runRead({
    backend: values.backends.split(',')[0] as Backend,
    stored: Number(values.stored),
    repeat: Number(values['read-repeat']),
    ingestEvents: Number(values['ingest-events']),
    ingestRounds,
    freshStore: values['fresh-store'],
    urls: { databaseUrl: values['database-url'], redisUrl: values['redis-url'] },
    nodeArgs,
    log,
  });
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : readReport(result));
  process.exit(0);
}

const backends = values.backends.split(',');
const unknown = backends.filter((b) => !(BACKENDS as readonly string[]).includes(b));
if (unknown.length > 0) {
  throw new Error(`--backends: unknown ${unknown.join(', ')} (known: ${BACKENDS.join(', ')})`);
}
const formats = values.format.split(',');
const badFormats = formats.filter((f) => !isFormat(f));
if (badFormats.length > 0) {
  throw new Error(`--format: unknown ${badFormats.join(', ')} (known: ${FORMATS.join(', ')})`);
}
const searchIndexes = values['search-index'].split(',').map((v) => {
  if (v !== 'on' && v !== 'off') throw new Error(`--search-index: on or off, got ${v}`);
  return v === 'on';
});
// Repeated runs take turns across the backends, so a slow spell of the machine is shared.
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be a whole number ≥ 1');

// `--worker-processes 1,2,3` runs each backend once per count.
const workerCounts = values['worker-processes'].split(',').map(Number);
if (workerCounts.some((n) => !Number.isInteger(n) || n < 1)) {
  throw new Error('--worker-processes: whole numbers ≥ 1, comma-separated');
}

const plan = {
  events: Number(values.events),
  settings: {
    dupRate: Number(values['dup-rate']),
    batch: Number(values.batch),
    concurrency: Number(values.concurrency),
    rate: values.rate === undefined ? null : Number(values.rate),
    backlog: values.backlog,
    workerProcesses: workerCounts[0] ?? 1,
    workerConcurrency: Number(values['worker-concurrency']),
    workerBatchMessages: Number(values['worker-batch-messages']),
  },
  urls: { databaseUrl: values['database-url'], redisUrl: values['redis-url'] },
  ceiling: !values['skip-ceiling'],
  nodeArgs,
  log,
};

if (values['idle-latency']) {
  const samples = Number(values.samples);
  const intervalMs = Number(values['interval-ms']);
  if (!Number.isInteger(samples) || samples < 1) throw new Error('--samples must be ≥ 1');
  if (!Number.isFinite(intervalMs) || intervalMs < 0) throw new Error('--interval-ms must be ≥ 0');
  const idle: IdleLatencyResult[] = [];
  for (const backend of backends as Backend[]) {
    idle.push(
      await runIdleLatency(backend, {
        samples,
        intervalMs,
        workerProcesses: plan.settings.workerProcesses,
        urls: plan.urls,
        nodeArgs: plan.nodeArgs,
        log: plan.log,
      }),
    );
  }
  process.stdout.write(
    values.json ? `${JSON.stringify(idle, null, 2)}\n` : idleLatencyReport(idle),
  );
  process.exit(0);
}

const results: BenchResult[] = [];
for (let run = 0; run < repeat; run++) {
  for (const workerProcesses of workerCounts) {
    for (const searchIndex of searchIndexes) {
      for (const format of formats as Format[]) {
        const sameRows = values['same-rows'] && format !== 'envelope' && format !== 'ndjson';
        for (const backend of backends as Backend[]) {
          const settings = {
            ...plan.settings,
            workerProcesses,
            ...(searchIndex ? {} : { searchIndex }),
          };
          if (sameRows) {
            results.push(
              await runOne(backend, {
                ...plan,
                settings: { ...settings, format: 'envelope', rowsOf: format },
              }),
            );
          }
          results.push(await runOne(backend, { ...plan, settings: { ...settings, format } }));
        }
      }
    }
  }
}
process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : textReport(results));
process.exit(results.every((r) => r.countsExact) ? 0 : 1);
