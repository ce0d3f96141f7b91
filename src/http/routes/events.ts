/**
 * GET /events: stored events filtered by topic, source and event time, newest first or oldest
 * first, paged by offset or by a cursor that stays exact while events arrive. GET /topics: the
 * counters and the latest event time of each topic.
 */
import type { FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import { storedEventsJson } from '../../stored-event-json.js';
import { isValidTimestamp, normalizeTimestamp } from '../../timestamp.js';
import type { RouteContext } from '../app-context.js';
import {
  contentFilterPatternProperties,
  contentFilterProperties,
  contentFilters,
} from '../event-filter-params.js';
import type { CounterReader, EventReader } from '../../store/store.js';
import { nameFilter } from '../schemas/event-schemas.js';

interface EventsQuery {
  q?: string;
  topic?: string;
  source?: string;
  since?: string;
  until?: string;
  order: 'asc' | 'desc';
  after?: string;
  limit: number;
  offset: number;
}

interface Cursor {
  readonly timestamp: string;
  readonly id: number;
  readonly order: 'asc' | 'desc';
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.timestamp, cursor.id, cursor.order])).toString(
    'base64url',
  );
}

function decodeCursor(text: string, order: 'asc' | 'desc'): Cursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const [timestamp, id, cursorOrder] = Array.isArray(parsed) ? (parsed as unknown[]) : [];
  if (
    typeof timestamp !== 'string' ||
    !isValidTimestamp(timestamp) ||
    !Number.isSafeInteger(id) ||
    (cursorOrder !== 'asc' && cursorOrder !== 'desc')
  ) {
    throw new AggregatorError('AGG_ERR_INVALID_QUERY', 'after is not a cursor this API gave out', [
      { field: 'after', reason: 'must be the x-next-cursor of an earlier page' },
    ]);
  }
  if (cursorOrder !== order) {
    throw new AggregatorError(
      'AGG_ERR_INVALID_QUERY',
      `the cursor was made for order=${cursorOrder}`,
      [{ field: 'order', reason: `must be ${cursorOrder}, as when the cursor was made` }],
    );
  }
  return { timestamp, id: id as number, order };
}

const timeBound = (description: string) =>
  ({ type: 'string', format: 'event-timestamp', description }) as const;

export function registerEventRoutes(
  app: FastifyInstance,
  ctx: RouteContext<EventReader & CounterReader>,
): void {
  app.get<{ Querystring: EventsQuery }>(
    '/events',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List stored events',
        description:
          'Newest event time first (order=desc) or oldest first, filtered by topic, source, event time, search words (`q`) and payload values (`field.<path>`). A full page carries `x-next-cursor`; pass it as `after` for the next page: unlike offset, it neither skips nor repeats events while new ones arrive, and each page costs the same however deep. `offset` is kept for older clients; prefer the cursor. Payloads come back as stored: every number keeps its digits (nothing is rounded to a double); PostgreSQL jsonb normalises key order, whitespace and number notation (`1e2` → `100`).',
        tags: ['events'],
        querystring: {
          type: 'object',
          properties: {
            ...contentFilterProperties,
            topic: nameFilter('Only this topic.'),
            source: nameFilter('Only this source.'),
            since: timeBound('Event time at or after this instant.'),
            until: timeBound('Event time before this instant.'),
            order: { type: 'string', enum: ['desc', 'asc'], default: 'desc' },
            after: { type: 'string', maxLength: 200, description: 'Cursor from x-next-cursor.' },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: {
              type: 'integer',
              minimum: 0,
              maximum: 10_000_000,
              default: 0,
              description: 'Rows to skip; reads them all first. Prefer the cursor (`after`).',
            },
          },
          patternProperties: contentFilterPatternProperties,
        },
        response: {
          200: {
            type: 'array',
            items: { $ref: 'StoredEvent#' },
            headers: {
              'x-next-cursor': { type: 'string', description: 'Present when the page is full.' },
            },
          },
          422: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const after = q.after === undefined ? undefined : decodeCursor(q.after, q.order);
      const { terms, fields } = contentFilters(q as unknown as Record<string, unknown>);
      const events = await ctx.store.listEvents({
        terms,
        fields,
        topic: q.topic,
        source: q.source,
        since: q.since === undefined ? undefined : normalizeTimestamp(q.since),
        until: q.until === undefined ? undefined : normalizeTimestamp(q.until),
        order: q.order,
        after,
        limit: q.limit,
        offset: q.offset,
      });
      const last = events.at(-1);
      if (events.length === q.limit && last !== undefined) {
        void reply.header(
          'x-next-cursor',
          encodeCursor({ timestamp: last.timestamp, id: last.id, order: q.order }),
        );
      }
      // Written as text around the stored payload text: the response schema's serializer would
      // need the payloads parsed, rounding their numbers to doubles.
      return reply.type('application/json; charset=utf-8').send(storedEventsJson(events));
    },
  );

  app.get(
    '/topics',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Topics with their counters and latest event time',
        tags: ['events'],
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                topic: { type: 'string' },
                events: { type: 'integer', description: 'Stored now (unique - expired).' },
                received: { type: 'integer' },
                unique_processed: { type: 'integer' },
                duplicate_dropped: { type: 'integer' },
                conflicting_duplicates: { type: 'integer' },
                rejected: { type: 'integer' },
                expired: { type: 'integer' },
                last_event_at: {
                  type: ['string', 'null'],
                  format: 'date-time',
                  description: 'Latest event time stored.',
                },
              },
            },
          },
          503: { $ref: 'Error#' },
        },
      },
    },
    async () =>
      (await ctx.store.topicSummaries()).map((t) => ({
        topic: t.topic,
        events: t.uniqueProcessed - t.expired,
        received: t.received,
        unique_processed: t.uniqueProcessed,
        duplicate_dropped: t.duplicateDropped,
        conflicting_duplicates: t.conflictingDuplicates,
        rejected: t.rejected,
        expired: t.expired,
        last_event_at: t.lastEventAt ?? null,
      })),
  );
}
