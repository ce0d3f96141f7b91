/**
 * What deduplication did, in detail: receipts of queued publishes, conflicting duplicates, per
 * source statistics, and a recomputation of the counting equations from the tables.
 */
import type { FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import { summariseOutcomes } from '../../store/store.js';
import type { RouteContext } from '../app-context.js';
import type {
  ConflictStore,
  CounterReader,
  DeadLetterStore,
  ReceiptStore,
} from '../../store/store.js';
import { eventOutcomeProperties, nameFilter } from '../schemas/event-schemas.js';

const errors = {
  422: { $ref: 'Error#' },
  503: { $ref: 'Error#' },
} as const;

const side = {
  type: 'object',
  properties: {
    hash: { type: 'string', description: '64-bit hash of timestamp, source and payload.' },
    timestamp: { type: ['string', 'null'] },
    source: { type: ['string', 'null'] },
    payload_start: {
      type: ['string', 'null'],
      description: 'The first 200 characters of the payload as JSON.',
    },
  },
} as const;

export function registerDedupRoutes(
  app: FastifyInstance,
  ctx: RouteContext<ReceiptStore & ConflictStore & CounterReader & DeadLetterStore>,
): void {
  app.get<{ Params: { message_id: string } }>(
    '/publish/receipts/:message_id',
    {
      config: { scope: 'publish' },
      schema: {
        summary: 'What became of each event of a queued publish',
        description:
          'By the message_id POST /publish answered. `pending` while it waits in the queue; once applied, one outcome per event in request order. A duplicate whose original a concurrent transaction stored is compared within about a second; if it differs, its outcome then turns into a conflict (or `rejected` under reject-conflicts). Receipts are kept for LEDGER_RETENTION_MS (an hour by default).',
        tags: ['events'],
        params: {
          type: 'object',
          properties: {
            message_id: { type: 'string', minLength: 1, maxLength: 64, 'x-query-text': true },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              message_id: { type: 'string' },
              status: { type: 'string', enum: ['pending', 'applied'] },
              stored: { type: 'integer' },
              duplicates: { type: 'integer' },
              conflicts: { type: 'integer' },
              rejected: { type: 'integer' },
              events: {
                type: 'array',
                items: { type: 'object', properties: eventOutcomeProperties },
              },
            },
          },
          404: { $ref: 'Error#' },
          ...errors,
        },
      },
    },
    async (request) => {
      const id = request.params.message_id;
      const key = ctx.queue.receiptKey(id);
      let outcomes = await ctx.store.receipt(key);
      if (outcomes === undefined) {
        if (await ctx.queue.isQueued(id)) return { message_id: id, status: 'pending' };
        // Applied between the two reads?
        outcomes = await ctx.store.receipt(key);
      }
      if (outcomes === undefined) {
        throw new AggregatorError(
          'AGG_ERR_NOT_FOUND',
          `No message ${id} waits in the queue or was applied within the receipt retention`,
        );
      }
      const summary = summariseOutcomes(outcomes);
      return {
        message_id: id,
        status: 'applied',
        stored: summary.inserted,
        duplicates: summary.duplicates,
        conflicts: summary.conflicts,
        rejected: summary.rejected,
        events: outcomes.map((o) => ({ index: o.index, outcome: o.outcome, conflict: o.conflict })),
      };
    },
  );

  app.get<{ Querystring: { topic?: string; limit: number; before?: number } }>(
    '/conflicts',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Duplicates whose timestamp, source or payload differ from the stored event',
        description: 'Newest first; page with `before` = the smallest id of the previous page.',
        tags: ['events'],
        querystring: {
          type: 'object',
          properties: {
            topic: nameFilter('Only this topic.'),
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            before: { type: 'integer', minimum: 1 },
          },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                id: { type: 'integer' },
                topic: { type: 'string' },
                event_id: { type: 'string' },
                stored: side,
                duplicate: side,
                rejected: { type: 'boolean' },
                differs: {
                  type: 'array',
                  items: { type: 'string', enum: ['timestamp', 'source', 'payload'] },
                  description: 'Which of timestamp, source and payload differ.',
                },
                detected_at: { type: 'string', format: 'date-time' },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) =>
      (
        await ctx.store.listConflicts({
          topic: request.query.topic,
          limit: request.query.limit,
          beforeId: request.query.before,
        })
      ).map((c) => ({
        id: c.id,
        topic: c.topic,
        event_id: c.eventId,
        stored: { ...c.stored, payload_start: c.stored.payloadStart },
        duplicate: { ...c.duplicate, payload_start: c.duplicate.payloadStart },
        rejected: c.rejected,
        differs: c.differs,
        detected_at: c.detectedAt,
      })),
  );

  app.get<{ Params: { topic: string } }>(
    '/topics/:topic/dedup',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Deduplication statistics of a topic, per source',
        description:
          'Per source of the arriving copies: events, unique, duplicates, duplicate ratio, conflicts, and the delay between a stored event and its later copies (median within 19%, max).',
        tags: ['stats'],
        params: {
          type: 'object',
          properties: { topic: nameFilter('The topic.') },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              topic: { type: 'string' },
              sources: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    source: { type: 'string' },
                    events: { type: 'integer' },
                    unique: { type: 'integer' },
                    duplicates: { type: 'integer' },
                    duplicate_ratio: { type: 'number' },
                    conflicts: { type: 'integer' },
                    median_delay_ms: { type: ['number', 'null'] },
                    max_delay_ms: { type: 'number' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => ({
      topic: request.params.topic,
      sources: (await ctx.store.dedupStats(request.params.topic)).map((s) => ({
        source: s.source,
        events: s.events,
        unique: s.unique,
        duplicates: s.duplicates,
        duplicate_ratio:
          s.events === 0 ? 0 : Math.round((s.duplicates / s.events) * 10_000) / 10_000,
        conflicts: s.conflicts,
        median_delay_ms: s.medianDelayMs,
        max_delay_ms: Math.round(s.maxDelayMs * 1000) / 1000,
      })),
    }),
  );

  app.get(
    '/stats/verify',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Recompute the counting equations from the tables and the queue',
        description:
          'Each check compares a counter with what the tables hold, in one snapshot; `consistent` is true when every difference is 0. `in_flight` is what waits in the queue.',
        tags: ['stats'],
        response: {
          200: {
            type: 'object',
            properties: {
              consistent: { type: 'boolean' },
              in_flight: { type: 'integer' },
              dead_lettered_events: { type: 'integer' },
              checks: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    name: { type: 'string' },
                    expected: { type: 'number' },
                    actual: { type: 'number' },
                    difference: { type: 'number' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async () => {
      const [checks, depth, deadLettered] = await Promise.all([
        ctx.store.verify(),
        ctx.queue.depth(),
        ctx.store.deadLetteredEvents(),
      ]);
      return {
        consistent: checks.every((c) => c.difference === 0),
        in_flight: depth.events,
        dead_lettered_events: deadLettered,
        checks,
      };
    },
  );
}
