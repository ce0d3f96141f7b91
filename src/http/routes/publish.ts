/**
 * POST /publish: validate a batch, then queue it as one message or (atomic) store it at once.
 * The batch may arrive in any of the shapes of publish-shapes.ts; it is validated and stored as
 * the envelope, and errors name fields in the shape that was sent.
 */
import { tracedPublish } from '../../tracing.js';
import type { FastifyError, FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import type { RouteContext } from '../app-context.js';
import { nextAtomicShard } from '../../store/counter-shards.js';
import type { EventApplier } from '../../store/store.js';
import { validationDetails } from '../errors-json.js';
import { assertStorableText, rawBodyOf } from '../json-body.js';
import { NDJSON_MEDIA_TYPE, registerNdjsonBodyParser } from '../ndjson-body.js';
import { fieldInShape, toEnvelope, type PublishEnvelope } from '../publish-shapes.js';
import {
  publishBodySchema,
  publishEnvelopeSchema,
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

declare module 'fastify' {
  interface FastifyRequest {
    /** POST /publish: the shape the body was sent in, once it became the envelope. */
    publishShape?: PublishEnvelope;
  }
}

/** A 422 whose fields are named in the shape that was sent. */
function inShape(error: AggregatorError, sent: PublishEnvelope | undefined): AggregatorError {
  if (sent === undefined || sent.shape === 'envelope' || error.details.length === 0) return error;
  const details = error.details.map((d) => ({
    field: fieldInShape(d.field, sent),
    reason: d.reason,
  }));
  return new AggregatorError(
    error.code,
    details.map((d) => `${d.field} ${d.reason}`).join('; '),
    details,
    { cause: error },
  );
}

export function registerPublishRoutes(app: FastifyInstance, ctx: RouteContext<EventApplier>): void {
  // A scope of its own, so that its NDJSON parser is not the root's (Elasticsearch bulk routes
  // parse their own NDJSON).
  void app.register(async (scope) => {
    registerNdjsonBodyParser(scope);
    registerPublishRoute(scope, ctx);
  });
}

function registerPublishRoute(app: FastifyInstance, ctx: RouteContext<EventApplier>): void {
  const maxEvents = ctx.config.maxEventsPerRequest;
  const ref = (id: string) => ({ $ref: `${id}#` });
  const compile = app.validatorCompiler;
  if (compile === undefined)
    throw new Error('POST /publish needs the validator compiler of the server');
  app.decorateRequest('publishShape', undefined);

  app.post<{ Body: PublishBody; Querystring: { atomic: boolean; detail: boolean } }>(
    '/publish',
    {
      config: { scope: 'publish' },
      // Every shape is validated as the envelope it became; the description shows them all.
      validatorCompiler: (route) =>
        compile({
          ...route,
          schema: route.httpPart === 'body' ? publishEnvelopeSchema : route.schema,
        }),
      attachValidation: true,
      schema: {
        summary: 'Publish a batch of events',
        description: `Queues the batch as one message (200 once it is durable), or with atomic=true stores it before answering. At most ${maxEvents} events per request. The body is {"events": [Event, …]}, a bare Event, or a bare array of Events (application/json), or one Event per line (${NDJSON_MEDIA_TYPE}).`,
        tags: ['events'],
        consumes: ['application/json', NDJSON_MEDIA_TYPE],
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
      // The shape becomes the envelope; an oversized batch is refused before validating
      // thousands of events one by one.
      preValidation: async (request) => {
        const sent = toEnvelope(request.body);
        if (sent === undefined) {
          throw new AggregatorError(
            'AGG_ERR_VALIDATION',
            'body must be of type object (an event, or {"events": [...]}) or array (of events)',
            [{ field: 'body', reason: 'must be of type object or array' }],
          );
        }
        request.publishShape = sent;
        request.body = sent.envelope as PublishBody;
        const events = sent.envelope.events;
        if (Array.isArray(events) && events.length > maxEvents) {
          throw new AggregatorError(
            'AGG_ERR_TOO_MANY_EVENTS',
            `A request may carry at most ${maxEvents} events; this one has ${events.length}. Split it.`,
            [
              {
                field: sent.shape === 'envelope' ? 'events' : 'body',
                reason: `must contain at most ${maxEvents} items`,
              },
            ],
          );
        }
      },
    },
    async (request) => {
      const sent = request.publishShape;
      const invalid = request.validationError as FastifyError | undefined;
      if (invalid?.validation !== undefined) {
        if (invalid.validationContext !== 'body') throw invalid;
        const details = validationDetails(invalid.validation);
        throw inShape(
          new AggregatorError(
            'AGG_ERR_VALIDATION',
            details.map((d) => `${d.field} ${d.reason}`).join('; '),
            details,
          ),
          sent,
        );
      }
      try {
        assertStorableText(request.body);
      } catch (error) {
        throw error instanceof AggregatorError ? inShape(error, sent) : error;
      }
      // The validated body goes on as the bytes that arrived, in the envelope; the database
      // reads the events from it (timestamps without an offset are read as UTC: its sessions
      // run in UTC).
      const batch = {
        body: rawBodyOf(request.body) ?? JSON.stringify(request.body),
        eventCount: request.body.events.length,
        topic: request.body.events[0]?.topic,
      };
      if (request.query.atomic) {
        const result = await ctx.store.applyAccepted(batch, nextAtomicShard(), {
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
      const messageId = await tracedPublish(batch.eventCount, (traceparent) =>
        ctx.queue.enqueue({ ...batch, traceparent }),
      );
      ctx.metrics.eventsAccepted.inc(batch.eventCount);
      return { accepted: batch.eventCount, queued: batch.eventCount, message_id: messageId };
    },
  );
}
