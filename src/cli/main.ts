#!/usr/bin/env node
/**
 * `log-aggregator publish …`: the load generator and demo publisher. It works against any service
 * speaking this API (including the system it replaces): sends a workload with a known number of
 * duplicates, shows progress, retries what the API says to retry, and with --verify waits for the
 * queue to drain and checks that the counters moved by exactly the expected amounts.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { publishEvents, PublishError, quantile, type PublishProgress } from './publisher.js';
import { makeWorkload } from './workload.js';

const USAGE = `Usage: log-aggregator publish [options]

  --url URL          aggregator base URL (default http://127.0.0.1:8080)
  --events N         events to send (default 20000)
  --dup-rate R       share of events that repeat an earlier one, 0..0.99 (default 0.35)
  --conflict-rate R  share of those repeats whose payload differs, 0..1 (default 0)
  --batch N          events per request (default 100)
  --concurrency N    requests in flight (default 20)
  --topic T[,T…]     topics to spread the events over (default demo)
  --rate N           target events per second (default: as fast as possible)
  --api-key KEY      API key, if the aggregator has API_KEYS (default: $AGGREGATOR_API_KEY);
                     --verify needs one with the read scope too
  --atomic           publish with ?atomic=true
  --verify           wait for the queue to drain and check the counters exactly
  --timeout S        seconds --verify waits for the drain (default 300)
  --quiet            no progress bar
`;

interface Stats {
  received: number;
  unique_processed: number;
  duplicate_dropped: number;
  /** Absent on aggregators that do not detect conflicting duplicates. */
  conflicting_duplicates?: number;
  rejected?: number;
}

let authorization: Record<string, string> = {};

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: authorization });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return (await response.json()) as T;
}

function number(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number between ${min} and ${max}`);
  }
  return n;
}

class UsageError extends Error {}

function progressBar(p: PublishProgress): string {
  const width = 30;
  const share = p.totalEvents === 0 ? 1 : p.sentEvents / p.totalEvents;
  const filled = Math.round(share * width);
  const rate = p.elapsedMs === 0 ? 0 : Math.round((p.sentEvents / p.elapsedMs) * 1000);
  return `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}%  ${p.sentEvents}/${p.totalEvents} events  ${rate.toLocaleString('en-US')} ev/s  retries ${p.retries}  `;
}

async function publishCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8080' },
      events: { type: 'string' },
      'dup-rate': { type: 'string' },
      'conflict-rate': { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      topic: { type: 'string', default: 'demo' },
      rate: { type: 'string' },
      atomic: { type: 'boolean', default: false },
      'api-key': { type: 'string' },
      verify: { type: 'boolean', default: false },
      timeout: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const url = values.url.replace(/\/$/, '');
  const apiKey = values['api-key'] ?? process.env.AGGREGATOR_API_KEY;
  if (apiKey !== undefined && apiKey !== '') authorization = { authorization: `Bearer ${apiKey}` };
  const total = number(values.events, 'events', 20_000, 1, 100_000_000);
  const dupRate = number(values['dup-rate'], 'dup-rate', 0.35, 0, 0.99);
  const conflictRate = number(values['conflict-rate'], 'conflict-rate', 0, 0, 1);
  const batch = number(values.batch, 'batch', 100, 1, 100_000);
  const concurrency = number(values.concurrency, 'concurrency', 20, 1, 10_000);
  const rate = values.rate === undefined ? undefined : number(values.rate, 'rate', 0, 1, 1e9);
  const timeoutMs = number(values.timeout, 'timeout', 300, 1, 86_400) * 1000;
  const topics = values.topic
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  const runId = randomUUID().slice(0, 8);
  let workload: ReturnType<typeof makeWorkload>;
  try {
    workload = makeWorkload({
      total,
      dupRate,
      topics,
      source: 'log-aggregator-cli',
      idPrefix: `run-${runId}`,
      seed: Date.now() % 2 ** 31,
      conflictRate,
    });
  } catch (error) {
    // A combination of rates that no workload satisfies is a usage error, not a crash.
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(
    `publishing ${total} events (${workload.duplicates} duplicates of which ${workload.conflicts} conflicting, ${workload.unique} unique) to ${url} in batches of ${batch}, ${concurrency} in flight${rate === undefined ? '' : `, ${rate} ev/s`}; run ${runId}`,
  );

  const before = values.verify ? await getJson<Stats>(`${url}/stats`) : undefined;
  // Responsiveness: the health endpoint is probed during the run.
  const healthMs: number[] = [];
  const probing = new AbortController();
  const probe = (async () => {
    while (!probing.signal.aborted) {
      const t0 = performance.now();
      try {
        await fetch(`${url}/health`, { signal: probing.signal });
        healthMs.push(performance.now() - t0);
      } catch {
        if (!probing.signal.aborted) healthMs.push(Number.POSITIVE_INFINITY);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  const tty = process.stderr.isTTY && !values.quiet;
  let lastPrint = 0;
  const report = await publishEvents(workload.events, {
    url,
    batch,
    concurrency,
    rate,
    atomic: values.atomic,
    apiKey: authorization.authorization === undefined ? undefined : apiKey,
    onProgress: (p) => {
      if (!tty) return;
      const now = performance.now();
      if (now - lastPrint < 100 && p.sentEvents < p.totalEvents) return;
      lastPrint = now;
      process.stderr.write(progressBar(p));
    },
  });
  if (tty) process.stderr.write('\n');
  const sendSeconds = report.elapsedMs / 1000;
  out(
    `sent ${report.sentEvents} events in ${report.requests} requests in ${sendSeconds.toFixed(2)} s: ${Math.round(report.sentEvents / sendSeconds).toLocaleString('en-US')} events/s; ${report.retries} retries`,
  );
  out(
    `publish latency ms: p50 ${quantile(report.latenciesMs, 0.5).toFixed(1)}  p95 ${quantile(report.latenciesMs, 0.95).toFixed(1)}  p99 ${quantile(report.latenciesMs, 0.99).toFixed(1)}  max ${quantile(report.latenciesMs, 1).toFixed(1)}`,
  );
  for (const f of report.failures.slice(0, 5)) out(`refused: ${f.status} ${f.body}`);

  let ok = report.failures.length === 0;
  if (values.verify && before !== undefined) {
    const deadline = Date.now() + timeoutMs;
    let after = before;
    for (;;) {
      const queue = await getJson<{ queue_size: number }>(`${url}/queue/stats`);
      after = await getJson<Stats>(`${url}/stats`);
      // Conflicts with a copy a concurrent transaction stored are counted up to a second later.
      const conflictsSettled =
        after.conflicting_duplicates === undefined ||
        after.conflicting_duplicates - (before.conflicting_duplicates ?? 0) >= workload.conflicts;
      const drained =
        queue.queue_size === 0 && after.received - before.received >= report.sentEvents;
      if (drained && conflictsSettled) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // From the first request (the bodies are serialised before it).
    const e2eSeconds = (performance.now() - report.startedAt) / 1000;
    const received = after.received - before.received;
    const unique = after.unique_processed - before.unique_processed;
    const duplicates = after.duplicate_dropped - before.duplicate_dropped;
    const rejected = (after.rejected ?? 0) - (before.rejected ?? 0);
    const checks: [boolean, string][] = [
      [report.sentEvents >= 20_000, `≥ 20,000 events: ${report.sentEvents} sent`],
      [
        workload.duplicates / total >= 0.3,
        `≥ 30% duplicates: ${((workload.duplicates / total) * 100).toFixed(1)}% sent as duplicates`,
      ],
      [
        healthMs.length > 0 && Math.max(...healthMs) < 1000,
        `responsive: /health answered every probe during the run, slowest ${Math.max(0, ...healthMs).toFixed(0)} ms`,
      ],
      [unique === workload.unique, `unique stored: ${unique} (expected ${workload.unique})`],
      [
        received === unique + duplicates + rejected && received >= report.sentEvents,
        `counters add up: received ${received} = unique ${unique} + duplicates ${duplicates} + rejected ${rejected}`,
      ],
    ];
    if (after.conflicting_duplicates !== undefined) {
      const caught = after.conflicting_duplicates - (before.conflicting_duplicates ?? 0);
      checks.push([
        caught === workload.conflicts,
        `conflicting duplicates caught: ${caught} (expected ${workload.conflicts})`,
      ]);
    }
    const verified = await fetch(`${url}/stats/verify`, { headers: authorization });
    if (verified.status === 200) {
      const body = (await verified.json()) as {
        consistent: boolean;
        checks: { name: string; difference: number }[];
      };
      const failing = body.checks.filter((c) => c.difference !== 0).map((c) => c.name);
      checks.push([
        body.consistent,
        `GET /stats/verify: ${body.checks.length} equations recomputed from the tables, ${failing.length === 0 ? 'all hold' : `failing: ${failing.join('; ')}`}`,
      ]);
    }
    out(
      `end to end (first request → all applied): ${e2eSeconds.toFixed(2)} s, ${Math.round(report.sentEvents / e2eSeconds).toLocaleString('en-US')} events/s`,
    );
    for (const [pass, line] of checks) out(`${pass ? '✓' : '✗'} ${line}`);
    ok = ok && checks.every(([pass]) => pass);
  }
  probing.abort();
  await probe;
  return ok ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'publish':
      return publishCommand(rest);
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError || error instanceof PublishError) {
      process.stderr.write(`${error.message}\n${error instanceof UsageError ? USAGE : ''}`);
      process.exit(2);
    }
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
