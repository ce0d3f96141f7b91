/**
 * What one benchmark run measured: the shape `npm run bench -- --json` prints (an array of these)
 * and bench/results/*.json keep, from which docs/benchmarks.md's tables are rendered.
 */

/** The service's backend combination a run measured. */
export type Backend =
  | 'postgres-redis'
  | 'postgres-inbox'
  | 'pglite-inbox'
  | 'postgres-redis-cluster'
  | 'postgres-jetstream';

export const BACKENDS: readonly Backend[] = [
  'postgres-redis',
  'postgres-inbox',
  'pglite-inbox',
  'postgres-redis-cluster',
  'postgres-jetstream',
];

/** How a run was driven: the workload beyond its size, and the service's worker settings. */
export interface RunSettings {
  /** Share of the events that repeat an earlier key (0..1). */
  dupRate: number;
  /** Events per request. */
  batch: number;
  /** Requests in flight. */
  concurrency: number;
  /** Offered events per second (`--rate`); null for a closed loop as fast as answered. */
  rate: number | null;
  /** `--backlog`: everything published before any worker ran. */
  backlog: boolean;
  workerProcesses: number;
  workerConcurrency: number;
  workerBatchMessages: number;
  /** The wire format the events were published in (bench/formats.ts); absent = the envelope. */
  format?: string;
  /**
   * `--same-rows`: the envelope carried the events this shipper format stores (bench/formats.ts
   * rowsOf), the baseline that format is judged against; absent = the workload's own events.
   */
  rowsOf?: string;
  /** SEARCH_INDEX of the service: false = started with the search indexes off; absent = on. */
  searchIndex?: boolean;
}

export interface BenchResult {
  backend: Backend;
  /** Which processes ran, e.g. `1 api + 1 worker process`. */
  topology: string;
  events: number;
  duplicates: number;
  sendSeconds: number;
  sendEventsPerSecond: number;
  endToEndSeconds: number;
  endToEndEventsPerSecond: number;
  /** The raw insert ceiling measured in the same run; null with `--skip-ceiling`. */
  ceilingEventsPerSecond: number | null;
  ratioToCeiling: number | null;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Resident set of all the service's processes together, at its peak, in MB. */
  peakRssMb: number;
  /** --backlog: what waited before any worker ran; end to end is then the drain alone. */
  backlog?: { waitingEvents: number; apiPeakRssMb: number; redisUsedMemoryMb: number } | undefined;
  countsExact: boolean;
  retries: number;
  /** How the run was driven (absent in results saved before it was recorded). */
  settings?: RunSettings;
  /** When the run ended, ISO 8601 UTC (absent in results saved before it was recorded). */
  finishedAt?: string;
}
