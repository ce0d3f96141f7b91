/**
 * One benchmark run on one backend: fresh data, the ceiling on the same events, the service
 * started, the workload published, every event waited for, the counts checked exactly.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { publishEvents, quantile } from '../src/cli/publisher.js';
import { formatRequest, rowsOf, type Format } from './formats.js';
import { RUNNERS, topology, type ServiceUrls } from './backends.js';
import { deploy, redisUsedMemoryMb } from './deployment.js';
import type { Backend, BenchResult, RunSettings } from './result.js';
import { benchWorkload } from './workload.js';

export interface RunPlan {
  readonly events: number;
  readonly settings: RunSettings;
  readonly urls: ServiceUrls;
  /** Measure the raw insert ceiling first (`--skip-ceiling` turns it off). */
  readonly ceiling: boolean;
  readonly nodeArgs: readonly string[];
  /** Where progress lines go. */
  readonly log: (line: string) => void;
}

async function getJson<T>(url: string): Promise<T> {
  return (await (await fetch(url)).json()) as T;
}

export async function runOne(backend: Backend, plan: RunPlan): Promise<BenchResult> {
  const { events: total, settings, log } = plan;
  const runner = RUNNERS[backend];
  const runId = randomUUID().slice(0, 8);
  const workload = benchWorkload(total, settings.dupRate, runId);
  const data = await runner.fresh(runId, plan.urls);
  try {
    let ceiling: number | null = null;
    if (plan.ceiling) {
      log(`[${backend}] measuring the raw insert ceiling on the same ${total} events…`);
      ceiling = await data.ceiling(workload.events);
    }
    log(`[${backend}] starting the service…`);
    const deployment = await deploy({
      env: {
        ...data.env,
        WORKER_CONCURRENCY: String(settings.workerConcurrency),
        WORKER_BATCH_MESSAGES: String(settings.workerBatchMessages),
        SEARCH_INDEX: settings.searchIndex === false ? 'off' : 'on',
      },
      separateWorkers: runner.separateWorkers,
      workerProcesses: settings.workerProcesses,
      nodeArgs: plan.nodeArgs,
    });
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, deployment.rssMb());
    }, 100);
    try {
      log(
        `[${backend}] publishing ${total} events (${workload.duplicates} duplicates), batch ${settings.batch}, ${settings.concurrency} in flight…`,
      );
      if (!settings.backlog) await deployment.addWorkers();
      const events =
        settings.rowsOf === undefined
          ? workload.events
          : rowsOf(settings.rowsOf as Format, workload.events, settings.batch);
      const report = await publishEvents(events, {
        url: deployment.url,
        batch: settings.batch,
        concurrency: settings.concurrency,
        rate: settings.rate ?? undefined,
        encode:
          settings.format === undefined || settings.format === 'envelope'
            ? undefined
            : (batch) => formatRequest(settings.format as Format, batch),
      });
      // End to end runs from the first request sent (not from serialising the bodies before it).
      let started = report.startedAt;
      let backlog: BenchResult['backlog'];
      if (settings.backlog) {
        const apiRss = peakRss;
        const queued = await getJson<{ queue_size: number }>(`${deployment.url}/queue/stats`);
        const redisMemory = await redisUsedMemoryMb(plan.urls.redisUrl);
        log(
          `[${backend}] backlog of ${queued.queue_size} events waiting; API process peak RSS ${apiRss.toFixed(0)} MB; Redis used_memory ${redisMemory.toFixed(0)} MB. Starting workers…`,
        );
        backlog = {
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
        topology: topology(backend, settings.workerProcesses),
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
        backlog,
        countsExact,
        retries: report.retries,
        settings,
        finishedAt: new Date().toISOString(),
      };
    } finally {
      clearInterval(sampler);
      await deployment.stop();
    }
  } finally {
    await data.dispose();
  }
}
