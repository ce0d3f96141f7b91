/** GET /metrics: Prometheus exposition (see src/metrics.ts for what each metric is). */
import type { FastifyInstance } from 'fastify';
import { DeploymentMetrics, renderMetrics } from '../../metrics.js';
import type { RouteContext } from '../app-context.js';
import type { CounterReader, DeadLetterStore } from '../../store/store.js';

export function registerMetricsRoutes(
  app: FastifyInstance,
  ctx: RouteContext<CounterReader & DeadLetterStore>,
): void {
  const deployment = new DeploymentMetrics(ctx.store, ctx.queue);

  // Every answer is timed by method, route pattern (never the raw URL) and status.
  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.httpDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status_code: reply.statusCode,
      },
      reply.elapsedTime / 1000,
    );
  });

  app.get(
    '/metrics',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Prometheus metrics',
        description:
          'Counters equal to /stats (read from the same rows; duplicates count duplicate_dropped + rejected, so none ever decreases), queue depth, dead letters, batch apply and HTTP request histograms, and process metrics summed over the forked worker processes.',
        tags: ['operations'],
        produces: ['text/plain'],
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => {
      const { contentType, text } = await renderMetrics(
        ctx.metrics,
        await ctx.childMetrics(),
        deployment,
      );
      return reply.type(contentType).send(text);
    },
  );
}
