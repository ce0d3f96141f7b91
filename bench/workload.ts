/**
 * The benchmark's workload: the events one run publishes, and the default workload the project's
 * throughput and latency targets are defined for.
 */
import { makeWorkload, type Workload } from '../src/cli/workload.js';
import type { RunSettings } from './result.js';

/** The default workload: the replaced system's demo, ten times larger. */
export const DEFAULT_WORKLOAD = {
  events: 200_000,
  dupRate: 0.35,
  batch: 100,
  concurrency: 20,
} as const;

/** Four topics, as the replaced system's demo had. */
const TOPICS = ['orders', 'auth', 'billing', 'search'];

/** The events of one run, with keys of its own (`runId`) so runs never share data. */
export function benchWorkload(events: number, dupRate: number, runId: string): Workload {
  return makeWorkload({ total: events, dupRate, topics: TOPICS, idPrefix: `bench-${runId}` });
}

/** Whether a run used the default workload as a closed loop (what the targets are defined for). */
export function isDefaultWorkload(events: number, settings: RunSettings): boolean {
  return (
    events === DEFAULT_WORKLOAD.events &&
    settings.dupRate === DEFAULT_WORKLOAD.dupRate &&
    settings.batch === DEFAULT_WORKLOAD.batch &&
    settings.concurrency === DEFAULT_WORKLOAD.concurrency &&
    settings.rate === null &&
    !settings.backlog
  );
}
