/**
 * GET /dead-letters: queued messages the database refused, with the reason, so an operator can
 * see what was not stored and why. DELETE /dead-letters/{message_id} discards one after
 * inspection; being destructive it exists only when an admin API key is configured.
 */
import type { FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import type { RouteContext } from '../app-context.js';
import type { DeadLetterStore } from '../../store/store.js';
import { hasAdminKey } from '../auth.js';

const deadLetterSchema = {
  type: 'object',
  properties: {
    message_id: { type: 'string', description: 'Queue message id (stream key/id, or inbox-<id>).' },
    reason: { type: 'string', description: 'Why the database refused it.' },
    failed_at: { type: 'string', format: 'date-time' },
    body: { type: 'string', description: 'The refused message as it was queued.' },
  },
} as const;

export function registerDeadLetterRoutes(
  app: FastifyInstance,
  ctx: RouteContext<DeadLetterStore>,
): void {
  app.get<{ Querystring: { limit: number; offset: number } }>(
    '/dead-letters',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Messages the database refused, most recent first',
        tags: ['operations'],
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 100, default: 10 },
            offset: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 0 },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              total: { type: 'integer' },
              dead_letters: { type: 'array', items: deadLetterSchema },
            },
          },
          422: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
    },
    async (request) => {
      const [total, letters] = await Promise.all([
        ctx.store.deadLetterCount(),
        ctx.store.listDeadLetters(request.query),
      ]);
      return {
        total,
        dead_letters: letters.map((l) => ({
          message_id: l.messageId,
          reason: l.reason,
          failed_at: l.failedAt,
          body: l.body,
        })),
      };
    },
  );

  if (!hasAdminKey(ctx.config.apiKeys)) return;
  app.delete<{ Params: { message_id: string } }>(
    '/dead-letters/:message_id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Discard a dead letter (admin key only)',
        tags: ['operations'],
        params: {
          type: 'object',
          properties: {
            message_id: { type: 'string', minLength: 1, maxLength: 512, 'x-query-text': true },
          },
        },
        response: {
          204: { type: 'null' },
          404: { $ref: 'Error#' },
          503: { $ref: 'Error#' },
        },
      },
    },
    async (request, reply) => {
      if (!(await ctx.store.deleteDeadLetter(request.params.message_id))) {
        throw new AggregatorError(
          'AGG_ERR_NOT_FOUND',
          `No dead letter with id ${request.params.message_id}`,
        );
      }
      return reply.status(204).send();
    },
  );
}
