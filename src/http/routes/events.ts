/** GET /events: stored events, newest event time first, optionally of one topic. */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app-context.js';
import { keyRequired } from '../auth.js';

export function registerEventRoutes(app: FastifyInstance, ctx: AppContext): void {
  app.get<{ Querystring: { topic?: string; limit: number; offset: number } }>(
    '/events',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List stored events',
        tags: ['events'],
        security: keyRequired,
        querystring: {
          type: 'object',
          properties: {
            topic: { type: 'string', minLength: 1, maxLength: 255 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 },
          },
        },
        response: {
          200: { type: 'array', items: { $ref: 'StoredEvent#' } },
          422: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
    },
    async (request) =>
      ctx.store.listEvents({
        topic: request.query.topic,
        limit: request.query.limit,
        offset: request.query.offset,
      }),
  );
}
