/**
 * Renders saved benchmark results (bench/results/*.json) into Markdown documents, between
 * markers, so the figures in docs/benchmarks.md and README.md are the results' and never pasted:
 *
 *     <!-- bench:series results/2026-11-25-afternoon.json -->   spread, median runs, targets
 *     <!-- bench:summary results/2026-11-25-afternoon.json -->  one line per backend (README)
 *     <!-- bench:rates results/2026-11-25-morning-rates.json -->  steady-rate runs, one a line
 *     <!-- bench:growth results/2026-11-30-growth.json -->  one line per store size
 *     …generated…
 *     <!-- bench:end -->
 *
 * A results file is what `npm run bench -- --json` printed, or `{ command, note, results }` around
 * it. Runs saved before a field existed may lack it; the median run of each backend, which the
 * tables show, must be complete. A growth file is what `npm run bench -- --growth --json` printed
 * (bench/growth-result.ts), with `command` and `note` beside its fields if need be.
 */
import { format, resolveConfig } from 'prettier';
import { quantile } from '../src/cli/publisher.js';
import { growthTable, type GrowthResult, type GrowthStep } from './growth-result.js';
import { medianRuns, rateTable, runsTable, spreadTable, targetLines } from './report.js';
import { BACKENDS, type Backend, type BenchResult } from './result.js';

/** A run as saved: every field but those the spread needs may be missing from an old one. */
export type SavedRun = Partial<BenchResult> &
  Pick<BenchResult, 'backend' | 'endToEndEventsPerSecond' | 'ratioToCeiling'>;

export interface SavedSeries {
  /** The command that produced the results. */
  readonly command?: string;
  /** Anything a reader of the figures must know (e.g. how old figures were transcribed). */
  readonly note?: string;
  readonly results: readonly SavedRun[];
}

const REQUIRED: readonly (keyof BenchResult)[] = [
  'backend',
  'topology',
  'events',
  'duplicates',
  'sendEventsPerSecond',
  'endToEndEventsPerSecond',
  'ceilingEventsPerSecond',
  'ratioToCeiling',
  'p50Ms',
  'p95Ms',
  'p99Ms',
  'peakRssMb',
  'countsExact',
];

/** Parses a results file, in either form, and checks what the tables will read. */
export function parseSeries(json: string, name: string): SavedSeries {
  const parsed = JSON.parse(json) as unknown;
  const series: SavedSeries = Array.isArray(parsed)
    ? { results: parsed as SavedRun[] }
    : (parsed as SavedSeries);
  const results = series.results as readonly SavedRun[] | undefined;
  if (results === undefined || results.length === 0) throw new Error(`${name}: no results`);
  for (const run of results) {
    if (!(BACKENDS as readonly string[]).includes(run.backend)) {
      throw new Error(`${name}: unknown backend ${String(run.backend)}`);
    }
    if (typeof run.endToEndEventsPerSecond !== 'number' || run.ratioToCeiling === undefined) {
      throw new Error(`${name}: every run needs endToEndEventsPerSecond and ratioToCeiling`);
    }
  }
  return series;
}

function complete(
  runs: readonly SavedRun[],
  name: string,
  required: readonly (keyof BenchResult)[] = REQUIRED,
  which = 'the median run',
): BenchResult[] {
  return runs.map((run) => {
    const missing = required.filter((field) => run[field] === undefined);
    if (missing.length > 0) {
      throw new Error(`${name}: ${which} of ${run.backend} lacks ${missing.join(', ')}`);
    }
    return run as BenchResult;
  });
}

/** Every run of a steady-rate series, one a line. */
export function ratesSection(series: SavedSeries, name: string): string {
  const runs = complete(
    series.results,
    name,
    ['settings', 'p50Ms', 'p95Ms', 'p99Ms', 'countsExact'],
    'a run',
  );
  // A note stays in the results file: these tables sit in a run of prose that says it once.
  return rateTable(runs);
}

/** The median runs first, in the order the backends ran. */
function medians(series: SavedSeries, name: string): BenchResult[] {
  // medianRuns reads only the fields every saved run has.
  return complete(medianRuns(series.results as BenchResult[]), name);
}

/** The full tables of a series, for docs/benchmarks.md. */
export function seriesSection(series: SavedSeries, name: string): string {
  const runs = series.results as BenchResult[];
  const parts: string[] = [];
  if (series.command !== undefined) parts.push(`\`${series.command}\`:`);
  const best = medians(series, name);
  if (runs.length > best.length) {
    parts.push(spreadTable(runs), 'The median run of each:');
  }
  parts.push(runsTable(best));
  const judged = targetLines(best);
  if (judged.length > 0) {
    parts.push(
      `Targets, judged on the median run of each backend:\n\n${judged.map((l) => `- ${l}`).join('\n')}`,
    );
  }
  if (series.note !== undefined) parts.push(`_${series.note}_`);
  return parts.join('\n\n');
}

const LABELS: Readonly<Record<Backend, string>> = {
  'postgres-redis': 'PostgreSQL + Redis',
  'postgres-inbox': 'PostgreSQL + inbox',
  'pglite-inbox': 'PGlite + inbox (embedded)',
  'postgres-redis-cluster': 'PostgreSQL + Redis Cluster',
  'postgres-jetstream': 'PostgreSQL + NATS JetStream',
};

/** One line per backend: median end to end, median ratio to the ceiling, the median run's p50. */
export function summaryTable(series: SavedSeries, name: string): string {
  const runs = series.results as BenchResult[];
  const best = medians(series, name);
  const runsOf = (backend: Backend) => runs.filter((r) => r.backend === backend);
  const rows = best.map((run) => {
    const ratios = runsOf(run.backend).flatMap((r) =>
      r.ratioToCeiling === null ? [] : [r.ratioToCeiling * 100],
    );
    return [
      LABELS[run.backend],
      `${Math.round(run.endToEndEventsPerSecond).toLocaleString('en-US')} events/s`,
      ratios.length === 0 ? '–' : `${quantile(ratios, 0.5).toFixed(0)}%`,
      `${run.p50Ms.toFixed(1)} ms`,
      run.countsExact ? 'yes' : 'NO',
    ];
  });
  const counts = [...new Set(best.map((run) => runsOf(run.backend).length))];
  const each = counts.length === 1 ? (counts[0] ?? 1) : undefined;
  const header = [
    'backend',
    each === 1 ? 'end to end' : `end to end (median${each === undefined ? '' : ` of ${each}`})`,
    'vs ceiling',
    'publish p50',
    'counts exact',
  ];
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** A growth result as saved: what the run printed, with a command and a note if need be. */
export type SavedGrowth = GrowthResult & {
  /** The command that produced the result. */
  readonly command?: string;
  /** Anything a reader of the figures must know (e.g. how old figures were transcribed). */
  readonly note?: string;
};

const STEP_NUMBERS: readonly (keyof GrowthStep)[] = ['stored', 'ingestPerSecond', 'bytesPerEvent'];
const DROP_NUMBERS = ['rows', 'totalMs', 'exclusiveMs', 'ingestPerSecond'] as const;

/** Parses a growth results file and checks every figure its table shows. */
export function parseGrowth(json: string, name: string): SavedGrowth {
  const growth = JSON.parse(json) as Partial<SavedGrowth> | readonly unknown[] | null;
  if (
    typeof growth !== 'object' ||
    growth === null ||
    Array.isArray(growth) ||
    !('steps' in growth)
  ) {
    throw new Error(`${name}: not a growth result (no steps)`);
  }
  const { backend, steps } = growth;
  if (!(BACKENDS as readonly unknown[]).includes(backend)) {
    throw new Error(`${name}: unknown backend ${String(backend)}`);
  }
  if (!Array.isArray(steps) || steps.length === 0) throw new Error(`${name}: no steps`);
  (steps as readonly Partial<GrowthStep>[]).forEach((step, i) => {
    const missing: string[] = STEP_NUMBERS.filter((field) => typeof step[field] !== 'number');
    if (typeof step.countsExact !== 'boolean') missing.push('countsExact');
    if (step.drop !== undefined) {
      const drop = step.drop as Partial<NonNullable<GrowthStep['drop']>>;
      missing.push(
        ...DROP_NUMBERS.filter((field) => typeof drop[field] !== 'number').map((f) => `drop.${f}`),
      );
    }
    if (missing.length > 0) throw new Error(`${name}: step ${i} lacks ${missing.join(', ')}`);
  });
  return growth as SavedGrowth;
}

/** The growth table of a saved result, with its command and note, for docs/benchmarks.md. */
export function growthSection(growth: SavedGrowth): string {
  const parts: string[] = [];
  if (growth.command !== undefined) parts.push(`\`${growth.command}\`:`);
  parts.push(growthTable(growth.steps));
  if (growth.note !== undefined) parts.push(`_${growth.note}_`);
  return parts.join('\n\n');
}

const MARKER =
  /(<!-- bench:(series|summary|rates|growth) (\S+) -->\n)[\s\S]*?(<!-- bench:end -->)/g;

/**
 * `document` with the text between each pair of markers rendered afresh from the results file
 * the marker names (read with `read`, relative to bench/), formatted as Prettier would.
 */
export async function renderDocument(
  document: string,
  documentPath: string,
  read: (resultsPath: string) => string,
): Promise<string> {
  const rendered = document.replace(
    MARKER,
    (_all, open: string, kind: string, file: string, close: string) => {
      const json = read(file);
      const body =
        kind === 'growth'
          ? growthSection(parseGrowth(json, file))
          : kind === 'series'
            ? seriesSection(parseSeries(json, file), file)
            : kind === 'rates'
              ? ratesSection(parseSeries(json, file), file)
              : summaryTable(parseSeries(json, file), file);
      return `${open}\n${body}\n\n${close}`;
    },
  );
  const options = (await resolveConfig(documentPath)) ?? {};
  return format(rendered, { ...options, filepath: documentPath });
}
