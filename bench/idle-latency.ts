/**
 * `npm run bench -- --idle-latency`: how soon an event published to an idle service becomes
 * readable. One event every `intervalMs` (default 1 s, so the workers are idle and backed off in
 * between), `samples` times; for each, the time from sending POST /publish to the event arriving
 * on the live stream (GET /events/stream: sent only once its transaction committed, so the event
 * is readable by then). Prints p50, p99 and the maximum. With the workers in processes of their
 * own (PostgreSQL), this measures how they are woken by another process's insert.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { quantile } from '../src/cli/publisher.js';
import { RUNNERS, topology, type ServiceUrls } from './backends.js';
import { deploy } from './deployment.js';
import type { Backend } from './result.js';

export interface IdleLatencyPlan {
  readonly samples: number;
  readonly intervalMs: number;
  readonly workerProcesses: number;
  readonly urls: ServiceUrls;
  readonly nodeArgs: readonly string[];
  readonly log: (line: string) => void;
}

export interface IdleLatencyResult {
  readonly backend: Backend;
  readonly topology: string;
  readonly samples: number;
  readonly intervalMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly latenciesMs: readonly number[];
}

/** Reads a live stream and tells when each event id arrives. */
async function watchStream(url: string, signal: AbortSignal) {
  const arrived = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const response = await fetch(url, { signal });
  if (response.status !== 200 || response.body === null) {
    throw new Error(`the live stream answered ${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        const at = performance.now();
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /"event_id":"([^"]+)"/.exec(frame)?.[1];
          if (id === undefined) continue;
          arrived.set(id, at);
          waiting.get(id)?.(at);
        }
      }
    } catch {
      // aborted at the end of the run
    }
  })();
  return {
    /** When `eventId` arrived (performance.now()), waiting for it up to `timeoutMs`. */
    arrival(eventId: string, timeoutMs: number): Promise<number> {
      const at = arrived.get(eventId);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${eventId} not on the stream after ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiting.set(eventId, (t) => {
          clearTimeout(timer);
          resolve(t);
        });
      });
    },
  };
}

export async function runIdleLatency(
  backend: Backend,
  plan: IdleLatencyPlan,
): Promise<IdleLatencyResult> {
  const runner = RUNNERS[backend];
  const runId = randomUUID().slice(0, 8);
  const data = await runner.fresh(runId, plan.urls);
  try {
    plan.log(`[${backend}] starting the service…`);
    const deployment = await deploy({
      env: data.env,
      separateWorkers: runner.separateWorkers,
      workerProcesses: plan.workerProcesses,
      nodeArgs: plan.nodeArgs,
    });
    const abort = new AbortController();
    try {
      await deployment.addWorkers();
      const topic = `idle-${runId}`;
      const stream = await watchStream(
        `${deployment.url}/events/stream?topic=${topic}`,
        abort.signal,
      );
      plan.log(
        `[${backend}] ${plan.samples} events, one every ${plan.intervalMs} ms, publish → on the stream…`,
      );
      const latencies: number[] = [];
      for (let i = 0; i < plan.samples; i++) {
        await sleep(plan.intervalMs);
        const eventId = `e-${i}`;
        const body = JSON.stringify({
          events: [
            { topic, event_id: eventId, timestamp: new Date().toISOString(), source: 'bench' },
          ],
        });
        const sent = performance.now();
        const response = await fetch(`${deployment.url}/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        if (response.status >= 300) {
          throw new Error(`publish answered ${response.status}: ${await response.text()}`);
        }
        const arrived = await stream.arrival(eventId, 30_000);
        latencies.push(arrived - sent);
      }
      return {
        backend,
        topology: topology(backend, plan.workerProcesses),
        samples: plan.samples,
        intervalMs: plan.intervalMs,
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        maxMs: Math.max(...latencies),
        latenciesMs: latencies,
      };
    } finally {
      abort.abort();
      await deployment.stop();
    }
  } finally {
    await data.dispose();
  }
}

/** One line per backend. */
export function idleLatencyReport(results: readonly IdleLatencyResult[]): string {
  const lines = results.map(
    (r) =>
      `${r.backend} (${r.topology}): publish → readable after ${r.intervalMs} ms idle, ${r.samples} samples: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms, max ${r.maxMs.toFixed(1)} ms`,
  );
  return `${lines.join('\n')}\n`;
}
