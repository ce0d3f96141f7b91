/**
 * `npm run bench`: end-to-end throughput of the real service on this machine.
 *
 * For each backend combination it starts the built service as child processes on fresh data,
 * measures the raw insert ceiling on the same events (bench/ceiling.ts), drives the workload
 * (default 200,000 events, 35% duplicates, batches of 100, 20 concurrent publishers), waits until
 * every event is applied, verifies the counts exactly (bench/measure.ts), and prints the tables
 * and the targets (bench/report.ts). `--json` prints the results as bench/result.ts describes
 * them; saved under bench/results/, `npm run bench:docs` renders them into docs/benchmarks.md.
 */
import { parseArgs } from 'node:util';
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
  },
});

const backends = values.backends.split(',');
const unknown = backends.filter((b) => !(BACKENDS as readonly string[]).includes(b));
if (unknown.length > 0) {
  throw new Error(`--backends: unknown ${unknown.join(', ')} (known: ${BACKENDS.join(', ')})`);
}
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
  // e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the service.
  nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== ''),
  log: (line: string) => {
    if (!values.json) process.stderr.write(`${line}\n`);
  },
};

const results: BenchResult[] = [];
for (let run = 0; run < repeat; run++) {
  for (const workerProcesses of workerCounts) {
    for (const backend of backends as Backend[]) {
      results.push(
        await runOne(backend, { ...plan, settings: { ...plan.settings, workerProcesses } }),
      );
    }
  }
}
process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : textReport(results));
process.exit(results.every((r) => r.countsExact) ? 0 : 1);
