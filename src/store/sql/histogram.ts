/**
 * GET /events/histogram: events per bucket of event time. The conditions are the listing's
 * (event-filters.ts), so the counts are of exactly the rows a listing returns; the topic, source
 * or time index narrows the rows, the search granules the content (contentSource).
 */
import type { SqlQueryable } from '../sql-driver.js';
import { HISTOGRAM_INTERVALS, type HistogramBucket, type HistogramQuery } from '../store.js';
import { contentConditions, contentSource, parameters, rangeConditions } from './event-filters.js';
import { ISO_UTC } from './sql-fragments.js';

/** Counts by bucket (date_bin from the Unix epoch, UTC); empty buckets are absent. */
export async function histogram(
  db: SqlQueryable,
  query: HistogramQuery,
): Promise<HistogramBucket[]> {
  const { params, param } = parameters();
  const where = [...rangeConditions(query, param), ...contentConditions(query, param)];
  const source = contentSource(query, param, where);
  const width = param(`${HISTOGRAM_INTERVALS[query.interval] / 1000} seconds`);
  const rows = await db.query<{ start: string; count: number }>(
    `SELECT ${ISO_UTC('bucket')} AS start, n::float8 AS count
     FROM (SELECT date_bin(${width}::interval, "timestamp", timestamptz '1970-01-01 00:00:00+00')
                    AS bucket, count(*) AS n
           FROM ${source}
           GROUP BY 1) AS b
     ORDER BY bucket`,
    params,
  );
  return rows.map((r) => ({ start: r.start, count: r.count }));
}
