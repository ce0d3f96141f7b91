/**
 * The benchmark's judgement of the targets: on the median run of each backend, the throughput
 * and latency targets only for the default workload, the memory one only for a large backlog.
 */
import { describe, expect, it } from 'vitest';
import { medianRuns, targetLines, textReport } from '../../bench/report.js';
import type { BenchResult, RunSettings } from '../../bench/result.js';

const defaults: RunSettings = {
  dupRate: 0.35,
  batch: 100,
  concurrency: 20,
  rate: null,
  backlog: false,
  workerProcesses: 1,
  workerConcurrency: 2,
  workerBatchMessages: 50,
};

function run(e2e: number, extra: Partial<BenchResult> = {}): BenchResult {
  return {
    backend: 'postgres-redis',
    topology: '1 api + 1 worker process',
    events: 200_000,
    duplicates: 70_000,
    sendSeconds: 1,
    sendEventsPerSecond: 200_000,
    endToEndSeconds: 200_000 / e2e,
    endToEndEventsPerSecond: e2e,
    ceilingEventsPerSecond: 100_000,
    ratioToCeiling: e2e / 100_000,
    p50Ms: 5,
    p95Ms: 20,
    p99Ms: 40,
    peakRssMb: 200,
    countsExact: true,
    retries: 0,
    settings: defaults,
    ...extra,
  };
}

describe('benchmark report', () => {
  it('judges the median run of each backend', () => {
    const runs = [run(80_000), run(50_000), run(65_000)];
    expect(medianRuns(runs).map((r) => r.endToEndEventsPerSecond)).toEqual([65_000]);
    expect(targetLines(runs)).toEqual([
      'postgres-redis: ≥ 60,000 events/s end to end: 65,000, met',
      'postgres-redis: ≥ 70% of the ceiling: 65%, NOT met',
      'postgres-redis: publish p50 ≤ 10 ms and p99 ≤ 50 ms: 5.0 / 40.0 ms, met',
    ]);
    expect(textReport(runs)).toContain('end-to-end ev/s median (min–max)');
  });

  it('judges throughput only for the default workload, memory only for a large backlog', () => {
    expect(targetLines([run(80_000, { settings: { ...defaults, rate: 30_000 } })])).toEqual([]);
    expect(targetLines([run(80_000, { settings: undefined })])).toEqual([]);
    const backlog = run(30_000, {
      events: 1_000_000,
      settings: { ...defaults, backlog: true },
      backlog: { waitingEvents: 1_000_000, apiPeakRssMb: 143, redisUsedMemoryMb: 197 },
    });
    expect(targetLines([backlog])).toEqual([
      'postgres-redis: API process resident set < 300 MB with 1,000,000 events waiting: 143 MB, met',
    ]);
  });

  it('judges each wire format against the envelope on the same backend', () => {
    const format = (name: string, e2e: number) =>
      run(e2e, { settings: { ...defaults, format: name } });
    const runs = [run(50_000), format('otlp-proto', 45_000), format('loki', 30_000)];
    expect(medianRuns(runs)).toHaveLength(3);
    expect(targetLines(runs).slice(3)).toEqual([
      "postgres-redis otlp-proto: ≥ 80% of the envelope's end-to-end events/s: 45,000 vs 50,000 (90%), met",
      "postgres-redis loki: ≥ 80% of the envelope's end-to-end events/s: 30,000 vs 50,000 (60%), NOT met",
    ]);
    expect(textReport(runs)).toContain('| postgres-redis otlp-proto |');
  });

  it('judges the search indexes against a run without them, same backend and format', () => {
    const off = (e2e: number, format?: string) =>
      run(e2e, { settings: { ...defaults, searchIndex: false, ...(format ? { format } : {}) } });
    const loki = run(36_000, { settings: { ...defaults, format: 'loki' } });
    const runs = [run(40_000), off(50_000), loki, off(40_000, 'loki')];
    const lines = targetLines(runs);
    expect(lines).toContain(
      'postgres-redis: with the search indexes ≥ 85% of the end-to-end events/s without: 40,000 vs 50,000 (80%), NOT met',
    );
    expect(lines).toContain(
      'postgres-redis loki: with the search indexes ≥ 85% of the end-to-end events/s without: 36,000 vs 40,000 (90%), met',
    );
    // Each format is compared with the envelope run of the same setting; runs without the
    // indexes are not judged against the project's throughput targets.
    expect(lines).toContain(
      "postgres-redis loki search-index off: ≥ 80% of the envelope's end-to-end events/s: 40,000 vs 50,000 (80%), met",
    );
    expect(lines.filter((l) => l.startsWith('postgres-redis search-index off:'))).toEqual([]);
    expect(textReport(runs)).toContain('| postgres-redis search-index off |');
  });

  it('with --same-rows, judges each format against the envelope carrying the rows it stores', () => {
    const runs = [
      run(50_000),
      run(40_000, { settings: { ...defaults, format: 'envelope', rowsOf: 'loki' } }),
      run(36_000, { settings: { ...defaults, format: 'loki' } }),
    ];
    const lines = targetLines(runs);
    expect(lines).toContain(
      "postgres-redis envelope (loki rows): 40,000 events/s end to end, 80% of the envelope with the workload's own events (the cost of the rows alone)",
    );
    expect(lines).toContain(
      "postgres-redis loki: ≥ 80% of the envelope's end-to-end events/s: 36,000 vs 50,000 (72%), NOT met",
    );
    expect(lines).toContain(
      'postgres-redis loki: ≥ 80% of the envelope carrying the same rows: 36,000 vs 40,000 (90%), met',
    );
  });
});
