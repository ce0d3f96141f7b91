/**
 * The benchmark tables of docs/benchmarks.md and README.md are rendered from the results saved
 * under bench/results/ (`npm run bench:docs`): this fails when a table was edited by hand, or
 * results were saved without rendering them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSeries, renderDocument } from '../../bench/doc-tables.js';
import type { GrowthResult } from '../../bench/growth-result.js';

const ROOT = new URL('../../', import.meta.url);
const read = (file: string) => readFileSync(new URL(`bench/${file}`, ROOT), 'utf8');

describe('benchmark tables', () => {
  it.each(['docs/benchmarks.md', 'README.md'])(
    '%s is what its saved results render to',
    async (doc) => {
      const url = new URL(doc, ROOT);
      const text = readFileSync(url, 'utf8');
      expect(text).toMatch(/<!-- bench:(series|summary) \S+ -->/);
      expect(await renderDocument(text, url.pathname, read)).toBe(text);
    },
  );

  it('docs/benchmarks.md renders its growth table from saved results too', () => {
    const text = readFileSync(new URL('docs/benchmarks.md', ROOT), 'utf8');
    expect(text).toMatch(/<!-- bench:growth results\/\S+-growth\.json -->/);
  });

  it('renders the figures of the results file, not what the page held before', async () => {
    const page = '<!-- bench:summary results/x.json -->\n| stale |\n\n<!-- bench:end -->\n';
    const series = {
      results: [
        {
          backend: 'postgres-redis',
          topology: '1 api + 1 worker process',
          events: 1000,
          duplicates: 350,
          sendEventsPerSecond: 5000,
          endToEndEventsPerSecond: 4321.4,
          ceilingEventsPerSecond: 10000,
          ratioToCeiling: 0.43214,
          p50Ms: 1.25,
          p95Ms: 2,
          p99Ms: 3,
          peakRssMb: 100,
          countsExact: true,
        },
      ],
    };
    const out = await renderDocument(page, '/tmp/page.md', () => JSON.stringify(series));
    expect(out).not.toContain('stale');
    expect(out).toMatch(/\| PostgreSQL \+ Redis \| 4,321 events\/s \| 43% +\| 1\.3 ms +\| yes +\|/);
  });

  it('refuses results whose median run lacks a figure its table shows', () => {
    const incomplete = JSON.stringify([
      { backend: 'pglite-inbox', endToEndEventsPerSecond: 1, ratioToCeiling: null },
    ]);
    const series = parseSeries(incomplete, 'x.json');
    expect(series.results).toHaveLength(1);
    return expect(
      renderDocument(
        '<!-- bench:series x.json -->\n<!-- bench:end -->\n',
        '/tmp/p.md',
        () => incomplete,
      ),
    ).rejects.toThrow(/median run of pglite-inbox lacks topology/);
  });

  // What `npm run bench -- --growth --json` prints: bench/run.ts writes runGrowth's GrowthResult.
  const growth: GrowthResult = {
    backend: 'postgres-inbox',
    settings: {
      stored: [0, 1_000_000],
      days: 2,
      ingestEvents: 20_000,
      batch: 100,
      concurrency: 20,
      searchIndex: true,
    },
    steps: [
      { stored: 0, ingestPerSecond: 20_000.4, countsExact: true, bytesPerEvent: 700.2 },
      {
        stored: 1_026_000,
        ingestPerSecond: 18_001,
        drop: { rows: 500_000, totalMs: 1234.5, exclusiveMs: 99.4, ingestPerSecond: 15_555.5 },
        countsExact: false,
        bytesPerEvent: 1000.6,
      },
    ],
    finishedAt: '2026-12-01T10:00:00.000Z',
  };
  const growthPage = '<!-- bench:growth results/g.json -->\n| stale |\n\n<!-- bench:end -->\n';

  it('renders a growth result as `npm run bench -- --growth --json` prints it', async () => {
    const saved = JSON.stringify({
      command: 'npm run bench -- --growth',
      note: 'A note.',
      ...growth,
    });
    const out = await renderDocument(growthPage, '/tmp/page.md', () => saved);
    expect(out).not.toContain('stale');
    expect(out).toContain('`npm run bench -- --growth`:');
    expect(out).toMatch(/\|\s+0 \|\s+20,000 \|\s+100% \|(\s+- \|){4}\s+yes\s+\|\s+700 \|/);
    expect(out).toMatch(
      /\|\s+1,026,000 \|\s+18,001 \|\s+90% \|\s+500,000 \|\s+1235 \|\s+99 \|\s+15,556 \|\s+NO\s+\|\s+1001 \|/,
    );
    expect(out).toContain('_A note._');
    // Bare, as printed, it renders the same table without the command and the note.
    const bare = await renderDocument(growthPage, '/tmp/page.md', () => JSON.stringify(growth));
    expect(bare).not.toContain('`npm run');
    expect(bare).toMatch(/\|\s+1,026,000 \|/);
  });

  it('refuses a growth result that lacks a figure its table shows, or is not one', async () => {
    const [first, second] = growth.steps;
    // JSON leaves out a field that is undefined.
    const drop = { ...second?.drop, exclusiveMs: undefined };
    const lacking = JSON.stringify({ ...growth, steps: [first, { ...second, drop }] });
    await expect(renderDocument(growthPage, '/tmp/p.md', () => lacking)).rejects.toThrow(
      /g\.json: step 1 lacks drop\.exclusiveMs/,
    );
    const series = JSON.stringify([{ backend: 'postgres-redis' }]);
    await expect(renderDocument(growthPage, '/tmp/p.md', () => series)).rejects.toThrow(
      /not a growth result/,
    );
  });
});
