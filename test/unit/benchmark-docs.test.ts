/**
 * The benchmark tables of docs/benchmarks.md and README.md are rendered from the results saved
 * under bench/results/ (`npm run bench:docs`): this fails when a table was edited by hand, or
 * results were saved without rendering them.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSeries, renderDocument } from '../../bench/doc-tables.js';

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
});
