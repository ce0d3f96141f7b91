/**
 * GET /events/histogram: how many events per bucket of event time, for the same filters as
 * GET /events (topic, source, q, field.*, since, until), every bucket of the range present, zeros
 * included. The counts are exact: the rows a listing with the same filters returns.
 */
import type { FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import { normalizeTimestamp } from '../../timestamp.js';
import {
  HISTOGRAM_INTERVALS,
  type EventReader,
  type HistogramInterval,
} from '../../store/store.js';
import type { RouteContext } from '../app-context.js';
import {
  contentFilterPatternProperties,
  contentFilterProperties,
  contentFilters,
} from '../event-filter-params.js';
import { nameFilter } from '../schemas/event-schemas.js';

/** Most buckets one answer holds. */
export const MAX_BUCKETS = 10_000;
/** The range when `since` is not given: this long before `until`. */
const DEFAULT_SPAN_MS: Readonly<Record<HistogramInterval, number>> = {
  '1m': 3_600_000,
  '5m': 86_400_000,
  '1h': 86_400_000,
  '1d': 30 * 86_400_000,
};

interface HistogramRequest {
  topic?: string;
  source?: string;
  q?: string;
  since?: string;
  until?: string;
  interval: HistogramInterval;
}

const timeBound = (description: string) =>
  ({ type: 'string', format: 'event-timestamp', description }) as const;

function invalid(field: string, reason: string): AggregatorError {
  return new AggregatorError('AGG_ERR_INVALID_QUERY', `${field}: ${reason}`, [{ field, reason }]);
}

export function registerHistogramRoutes(
  app: FastifyInstance,
  ctx: RouteContext<EventReader>,
): void {
  app.get<{ Querystring: HistogramRequest }>(
    '/events/histogram',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Events per bucket of event time',
        description: `Counts of the events GET /events would list with the same filters, per bucket of event time (UTC, aligned to the Unix epoch), over [since, until). Every bucket is present, zeros included; at most ${MAX_BUCKETS} buckets. Without until: now; without since: a day before until (an hour for 1m, 30 days for 1d).`,
        tags: ['events'],
        querystring: {
          type: 'object',
          properties: {
            ...contentFilterProperties,
            topic: nameFilter('Only this topic.'),
            source: nameFilter('Only this source.'),
            since: timeBound('Event time at or after this instant.'),
            until: timeBound('Event time before this instant.'),
            interval: {
              type: 'string',
              enum: Object.keys(HISTOGRAM_INTERVALS),
              default: '1h',
              description: 'Bucket width.',
            },
          },
          patternProperties: contentFilterPatternProperties,
        },
        response: {
          200: {
            type: 'object',
            required: ['interval', 'buckets'],
            properties: {
              interval: { type: 'string' },
              buckets: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['start', 'count'],
                  properties: {
                    start: { type: 'string', format: 'date-time' },
                    count: { type: 'integer' },
                  },
                },
              },
            },
          },
          422: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const width = HISTOGRAM_INTERVALS[q.interval];
      const until = q.until === undefined ? new Date().toISOString() : normalizeTimestamp(q.until);
      const untilMs = Date.parse(until ?? '');
      const since =
        q.since === undefined
          ? new Date(untilMs - DEFAULT_SPAN_MS[q.interval]).toISOString()
          : normalizeTimestamp(q.since);
      const sinceMs = Date.parse(since ?? '');
      if (until === undefined || since === undefined || !(sinceMs < untilMs)) {
        throw invalid('since', 'must be before until');
      }
      const first = Math.floor(sinceMs / width) * width;
      const buckets = Math.ceil((untilMs - first) / width);
      if (buckets > MAX_BUCKETS) {
        throw invalid(
          'interval',
          `the range holds ${buckets} buckets of ${q.interval}; at most ${MAX_BUCKETS}: narrow since/until or widen the interval`,
        );
      }
      const { terms, fields } = contentFilters(q as unknown as Record<string, unknown>);
      const counted = await ctx.store.histogram({
        topic: q.topic,
        source: q.source,
        since,
        until,
        interval: q.interval,
        terms,
        fields,
      });
      const counts = new Map(counted.map((b) => [Date.parse(b.start), b.count]));
      return {
        interval: q.interval,
        buckets: Array.from({ length: buckets }, (_, i) => {
          const start = first + i * width;
          return { start: new Date(start).toISOString(), count: counts.get(start) ?? 0 };
        }),
      };
    },
  );
}
