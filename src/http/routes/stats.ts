/** GET /stats: the counters, exact and kept with the data. */
import type { FastifyInstance } from 'fastify';
import { uptimeSeconds, type RouteContext } from '../app-context.js';
import type { CounterReader } from '../../store/store.js';

export function registerStatsRoutes(app: FastifyInstance, ctx: RouteContext<CounterReader>): void {
  app.get(
    '/stats',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Counters',
        description:
          'received = unique_processed + duplicate_dropped + rejected, counted in the transaction that stores the events. Events still queued are not yet received.',
        tags: ['stats'],
        response: {
          200: {
            type: 'object',
            properties: {
              received: { type: 'integer' },
              unique_processed: { type: 'integer' },
              duplicate_dropped: { type: 'integer' },
              conflicting_duplicates: {
                type: 'integer',
                description:
                  'Duplicates whose timestamp, source or payload differ from the stored event (see GET /conflicts).',
              },
              rejected: {
                type: 'integer',
                description: 'Conflicting duplicates refused (DUPLICATE_POLICY=reject-conflicts).',
              },
              keys_expired: {
                type: 'integer',
                description: 'Expired events whose key was forgotten too (KEY_RETENTION_DAYS).',
              },
              expired: {
                type: 'integer',
                description: 'Stored events since deleted by retention (RETENTION_DAYS).',
              },
              topics: { type: 'array', items: { type: 'string' } },
              uptime_seconds: { type: 'number' },
              dedup_rate_percent: { type: 'number' },
            },
          },
          503: { $ref: 'Error#' },
        },
      },
    },
    async () => {
      const c = await ctx.store.counters();
      return {
        received: c.received,
        unique_processed: c.uniqueProcessed,
        duplicate_dropped: c.duplicateDropped,
        conflicting_duplicates: c.conflictingDuplicates,
        rejected: c.rejected,
        expired: c.expired,
        keys_expired: c.keysExpired,
        topics: c.topics,
        uptime_seconds: uptimeSeconds(ctx),
        dedup_rate_percent:
          c.received === 0 ? 0 : Math.round((c.duplicateDropped / c.received) * 10_000) / 100,
      };
    },
  );
}
