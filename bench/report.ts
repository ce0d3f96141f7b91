/**
 * Benchmark results as Markdown tables, and the project's performance targets judged on them.
 * The CLI prints these; bench/render-docs.ts writes the same into docs/benchmarks.md.
 */
import { quantile } from '../src/cli/publisher.js';
import type { BenchResult } from './result.js';
import { isDefaultWorkload } from './workload.js';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (n: number) => `${n.toFixed(0)}%`;

function markdown(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/**
 * The series a run belongs to: its backend, and the wire format it was published in when that
 * is not the envelope (`postgres-redis otlp-proto`). Medians and targets are taken per series.
 */
export function seriesOf(r: BenchResult): string {
  const format = r.settings?.format;
  const rows = r.settings?.rowsOf;
  const series =
    rows !== undefined
      ? `${r.backend} envelope (${rows} rows)`
      : format === undefined || format === 'envelope'
        ? r.backend
        : `${r.backend} ${format}`;
  const indexed = r.settings?.searchIndex === false ? `${series} search-index off` : series;
  const workers = r.settings?.workerProcesses ?? 1;
  return workers === 1 ? indexed : `${indexed}, ${workers} worker processes`;
}

function seriesNames(results: readonly BenchResult[]): string[] {
  return [...new Set(results.map(seriesOf))];
}

/** One row per run. */
export function runsTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => [
    seriesOf(r),
    r.topology,
    fmt(r.events),
    fmt(r.duplicates),
    fmt(r.sendEventsPerSecond),
    fmt(r.endToEndEventsPerSecond),
    r.ceilingEventsPerSecond === null ? '–' : fmt(r.ceilingEventsPerSecond),
    r.ratioToCeiling === null ? '–' : pct(r.ratioToCeiling * 100),
    `${r.p50Ms.toFixed(1)} / ${r.p95Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)}`,
    r.peakRssMb.toFixed(0),
    r.countsExact ? 'yes' : 'NO',
  ]);
  return markdown(
    [
      'backend',
      'processes',
      'events',
      'duplicates',
      'send ev/s',
      'end-to-end ev/s',
      'ceiling ev/s',
      'vs ceiling',
      'publish p50/p95/p99 ms',
      'peak RSS MB',
      'counts exact',
    ],
    rows,
  );
}

/** The median of each backend's runs with the spread, for backends that ran more than once. */
export function spreadTable(results: readonly BenchResult[]): string {
  // The median shown is the run targetLines() judges: the lower middle of an even count.
  const median = (xs: number[]) => quantile(xs, 0.5);
  const rows = seriesNames(results).map((series) => {
    const runs = results.filter((r) => seriesOf(r) === series);
    const e2e = runs.map((r) => r.endToEndEventsPerSecond);
    const ratios = runs.flatMap((r) => (r.ratioToCeiling === null ? [] : [r.ratioToCeiling * 100]));
    return [
      series,
      String(runs.length),
      `${fmt(median(e2e))} (${fmt(Math.min(...e2e))}–${fmt(Math.max(...e2e))})`,
      ratios.length === 0
        ? '–'
        : `${pct(median(ratios))} (${pct(Math.min(...ratios))}–${pct(Math.max(...ratios))})`,
    ];
  });
  return markdown(
    ['backend', 'runs', 'end-to-end ev/s median (min–max)', 'vs ceiling median (min–max)'],
    rows,
  );
}

/** Runs at a steady offered rate (`--rate`): the latency below saturation. */
export function rateTable(results: readonly BenchResult[]): string {
  const rows = results.map((r) => [
    r.settings?.rate == null ? 'closed loop' : `${fmt(r.settings.rate)} events/s`,
    `${r.p50Ms.toFixed(1)} / ${r.p95Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)}`,
    `${fmt(r.endToEndEventsPerSecond)} events/s`,
    r.countsExact ? 'yes' : 'NO',
  ]);
  return markdown(
    ['offered rate (`--rate`)', 'publish p50 / p95 / p99 ms', 'end to end', 'counts exact'],
    rows,
  );
}

/** Each series' median run by end-to-end rate (the lower middle of an even count). */
export function medianRuns(results: readonly BenchResult[]): BenchResult[] {
  return seriesNames(results).flatMap((series) => {
    const runs = results
      .filter((r) => seriesOf(r) === series)
      .sort((a, b) => a.endToEndEventsPerSecond - b.endToEndEventsPerSecond);
    const r = runs[Math.floor((runs.length - 1) / 2)];
    return r === undefined ? [] : [r];
  });
}

/**
 * The project's performance targets, judged on the median run of each backend. The throughput
 * and latency targets are defined for the default workload only; the memory target for a backlog
 * of at least 1,000,000 events.
 */
export function targetLines(results: readonly BenchResult[]): string[] {
  const lines: string[] = [];
  const judge = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const medians = medianRuns(results);
  const formatOf = (m: BenchResult) =>
    m.settings?.rowsOf !== undefined
      ? `rows of ${m.settings.rowsOf}`
      : (m.settings?.format ?? 'envelope');
  const indexed = (m: BenchResult) => m.settings?.searchIndex !== false;
  for (const r of medians) {
    const { backend } = r;
    const format = formatOf(r);
    const unindexed = indexed(r)
      ? medians.find((m) => m.backend === backend && formatOf(m) === format && !indexed(m))
      : undefined;
    if (unindexed !== undefined) {
      // The search indexes' cost on ingest, on the same backend and format, in the same run.
      const share = (r.endToEndEventsPerSecond / unindexed.endToEndEventsPerSecond) * 100;
      lines.push(
        `${seriesOf(r)}: with the search indexes ≥ 85% of the end-to-end events/s without: ${fmt(r.endToEndEventsPerSecond)} vs ${fmt(unindexed.endToEndEventsPerSecond)} (${pct(share)}), ${judge(share >= 85)}`,
      );
    }
    if (r.settings?.rowsOf !== undefined) {
      // A baseline, not judged: what the larger rows alone cost the envelope.
      const envelope = medians.find(
        (m) => m.backend === backend && formatOf(m) === 'envelope' && indexed(m) === indexed(r),
      );
      if (envelope !== undefined) {
        const share = (r.endToEndEventsPerSecond / envelope.endToEndEventsPerSecond) * 100;
        lines.push(
          `${seriesOf(r)}: ${fmt(r.endToEndEventsPerSecond)} events/s end to end, ${pct(share)} of the envelope with the workload's own events (the cost of the rows alone)`,
        );
      }
      continue;
    }
    if (format !== 'envelope') {
      // A shipper format is judged against the envelope on the same backend, in the same run.
      const envelope = medians.find(
        (m) => m.backend === backend && formatOf(m) === 'envelope' && indexed(m) === indexed(r),
      );
      if (envelope !== undefined) {
        const share = (r.endToEndEventsPerSecond / envelope.endToEndEventsPerSecond) * 100;
        lines.push(
          `${seriesOf(r)}: ≥ 80% of the envelope's end-to-end events/s: ${fmt(r.endToEndEventsPerSecond)} vs ${fmt(envelope.endToEndEventsPerSecond)} (${pct(share)}), ${judge(share >= 80)}`,
        );
      }
      // The same, against the envelope carrying the rows this format stores (--same-rows).
      const sameRows = medians.find(
        (m) =>
          m.backend === backend && formatOf(m) === `rows of ${format}` && indexed(m) === indexed(r),
      );
      if (sameRows !== undefined) {
        const share = (r.endToEndEventsPerSecond / sameRows.endToEndEventsPerSecond) * 100;
        lines.push(
          `${seriesOf(r)}: ≥ 80% of the envelope carrying the same rows: ${fmt(r.endToEndEventsPerSecond)} vs ${fmt(sameRows.endToEndEventsPerSecond)} (${pct(share)}), ${judge(share >= 80)}`,
        );
      }
      continue;
    }
    // The project's targets are for the service as it ships, search indexes on.
    if (!indexed(r)) continue;
    if (r.backlog !== undefined && r.backlog.waitingEvents >= 1_000_000) {
      const rss = r.backlog.apiPeakRssMb;
      lines.push(
        `${backend}: API process resident set < 300 MB with ${fmt(r.backlog.waitingEvents)} events waiting: ${rss.toFixed(0)} MB, ${judge(rss < 300)}`,
      );
    }
    if (r.settings === undefined || !isDefaultWorkload(r.events, r.settings)) continue;
    const e2e = r.endToEndEventsPerSecond;
    if (backend === 'pglite-inbox') {
      lines.push(`${backend}: ≥ 20,000 events/s end to end: ${fmt(e2e)}, ${judge(e2e >= 20_000)}`);
      continue;
    }
    lines.push(`${backend}: ≥ 60,000 events/s end to end: ${fmt(e2e)}, ${judge(e2e >= 60_000)}`);
    if (r.ratioToCeiling !== null) {
      const ratio = r.ratioToCeiling * 100;
      lines.push(`${backend}: ≥ 70% of the ceiling: ${pct(ratio)}, ${judge(ratio >= 70)}`);
    }
    lines.push(
      `${backend}: publish p50 ≤ 10 ms and p99 ≤ 50 ms: ${r.p50Ms.toFixed(1)} / ${r.p99Ms.toFixed(1)} ms, ${judge(r.p50Ms <= 10 && r.p99Ms <= 50)}`,
    );
  }
  return lines;
}

/** What each backlog run measured, in words. */
export function backlogLines(results: readonly BenchResult[]): string[] {
  return results.flatMap((r) =>
    r.backlog === undefined
      ? []
      : [
          `${r.backend} backlog: ${fmt(r.backlog.waitingEvents)} events waited with no worker running; API process peak RSS ${r.backlog.apiPeakRssMb.toFixed(0)} MB, Redis used_memory ${r.backlog.redisUsedMemoryMb.toFixed(0)} MB; the drain took ${r.endToEndSeconds.toFixed(1)} s (${fmt(r.endToEndEventsPerSecond)} events/s; end-to-end column = drain only)`,
        ],
  );
}

/** The whole report the CLI prints without `--json`. */
export function textReport(results: readonly BenchResult[]): string {
  let out = `${runsTable(results)}\n`;
  if (results.length > seriesNames(results).length) out += `\n${spreadTable(results)}\n`;
  for (const line of backlogLines(results)) out += `\n${line}\n`;
  const judged = targetLines(results);
  if (judged.length > 0) {
    out += `\nTargets (median run of each series):\n${judged.map((l) => `- ${l}\n`).join('')}`;
  }
  return out;
}
