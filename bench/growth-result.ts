/**
 * What a growth run measured (bench/growth.ts): the shape `npm run bench -- --growth --json`
 * prints and bench/results/*-growth.json keep, and its table, which the CLI prints and
 * bench/doc-tables.ts renders into docs/benchmarks.md.
 */
import type { Backend } from './result.js';

export interface GrowthStep {
  /** Rows in events when the ingest began. */
  readonly stored: number;
  /** End to end, published until stored. */
  readonly ingestPerSecond: number;
  /** Undefined when there was no filler partition to drop (N = 0). */
  readonly drop?: {
    readonly rows: number;
    readonly totalMs: number;
    readonly exclusiveMs: number;
    /** Events/s of the ingest that ran meanwhile. */
    readonly ingestPerSecond: number;
  };
  /** Counts checked after the drop: received = sent, verify consistent. */
  readonly countsExact: boolean;
  readonly bytesPerEvent: number;
}

/** How a growth run was driven. */
export interface GrowthSettings {
  /** Store sizes asked for (`--stored`), ascending; a step's `stored` is what the store held. */
  readonly stored: readonly number[];
  /** Days the filler events span, a day partition each (`--growth-days`). */
  readonly days: number;
  /** Events of each ingest round, 35% of them duplicates (`--ingest-events`). */
  readonly ingestEvents: number;
  /** Events per request and requests in flight of the ingest rounds. */
  readonly batch: number;
  readonly concurrency: number;
  /** SEARCH_INDEX of the service. */
  readonly searchIndex: boolean;
}

export interface GrowthResult {
  readonly backend: Backend;
  readonly settings: GrowthSettings;
  readonly steps: readonly GrowthStep[];
  /** When the run ended, ISO 8601 UTC (absent from results transcribed from an older page). */
  readonly finishedAt?: string;
}

/** One row per store size; the first size's ingest rate is the reference of "vs first". */
export function growthTable(steps: readonly GrowthStep[]): string {
  const base = steps[0]?.ingestPerSecond ?? 0;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const rows = steps.map((s) => [
    s.stored.toLocaleString('en-US'),
    fmt(s.ingestPerSecond),
    base > 0 ? `${Math.round((100 * s.ingestPerSecond) / base)}%` : '',
    s.drop === undefined ? '-' : s.drop.rows.toLocaleString('en-US'),
    s.drop === undefined ? '-' : Math.round(s.drop.totalMs).toString(),
    s.drop === undefined ? '-' : Math.round(s.drop.exclusiveMs).toString(),
    s.drop === undefined ? '-' : fmt(s.drop.ingestPerSecond),
    s.countsExact ? 'yes' : 'NO',
    Math.round(s.bytesPerEvent).toString(),
  ]);
  return [
    '| stored events | ingest events/s | vs first | drop one day: rows | total ms | exclusive lock ms | ingest meanwhile events/s | counts exact | bytes per stored event |',
    '|---:|---:|---:|---:|---:|---:|---:|:---:|---:|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/** What `npm run bench -- --growth` prints without `--json`. */
export function growthReport(result: GrowthResult): string {
  return `Growth benchmark: ${result.backend}\n\n${growthTable(result.steps)}\n`;
}
