/** POST /publish: validate a batch, then queue it as one message or (atomic) store it at once. */
import type { FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import type { AppContext } from '../app-context.js';
import { assertStorableText, rawBodyOf } from '../json-body.js';
import {
  publishBodySchema,
  publishQuerySchema,
  publishResponseSchema,
} from '../schemas/event-schemas.js';

interface PublishBody {
  events: {
    topic: string;
    event_id: string;
    timestamp: string;
    source: string;
    payload?: Record<string, unknown>;
  }[];
}

/** Counter shard for atomic publishes: spread over the upper half so workers keep theirs. */
let atomicShard = 64;

export function registerPublishRoutes(app: FastifyInstance, ctx: AppContext): void {
  const maxEvents = ctx.config.maxEventsPerRequest;
  const ref = (id: string) => ({ $ref: `${id}#` });

  app.post<{ Body: PublishBody; Querystring: { atomic: boolean; detail: boolean } }>(
    '/publish',
    {
      config: { scope: 'publish' },
      schema: {
        summary: 'Publish a batch of events',
        description: `Queues the batch as one message (200 once it is durable), or with atomic=true stores it before answering. At most ${maxEvents} events per request.`,
        tags: ['events'],
        body: publishBodySchema,
        querystring: publishQuerySchema,
        response: {
          200: publishResponseSchema,
          400: ref('Error'),
          413: ref('Error'),
          409: ref('Error'),
          415: ref('Error'),
          422: ref('Error'),
          503: ref('Error'),
        },
      },
      // Refuse an oversized batch before validating thousands of events one by one.
      preValidation: async (request) => {
        const events = (request.body as { events?: unknown } | null)?.events;
        if (Array.isArray(events) && events.length > maxEvents) {
          throw new AggregatorError(
            'AGG_ERR_TOO_MANY_EVENTS',
            `A request may carry at most ${maxEvents} events; this one has ${events.length}. Split it.`,
            [{ field: 'events', reason: `must contain at most ${maxEvents} items` }],
          );
        }
      },
    },
    async (request) => {
      assertStorableText(request.body);
      // The validated body goes on as the bytes that arrived; the database reads the events from
      // it (timestamps without an offset are read as UTC: its sessions run in UTC).
      const batch = {
        body: rawBodyOf(request.body) ?? JSON.stringify(request.body),
        eventCount: request.body.events.length,
      };
      if (request.query.atomic) {
        atomicShard = atomicShard >= 127 ? 64 : atomicShard + 1;
        const result = await ctx.store.applyAccepted(batch, atomicShard, {
          detail: request.query.detail,
        });
        ctx.metrics.eventsAccepted.inc(batch.eventCount);
        return {
          accepted: batch.eventCount,
          queued: 0,
          processed: result.inserted,
          duplicates: result.duplicates,
          conflicts: result.conflicts,
          events: result.outcomes?.map((o) => ({
            index: o.index,
            outcome: o.outcome,
            conflict: o.conflict,
            original_processed_at: o.originalProcessedAt,
          })),
        };
      }
      const messageId = await ctx.queue.enqueue(batch);
      ctx.metrics.eventsAccepted.inc(batch.eventCount);
      return { accepted: batch.eventCount, queued: batch.eventCount, message_id: messageId };
    },
  );
}
