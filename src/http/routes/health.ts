/**
 * GET /health (and its alias /health/ready, which orchestrators probe for readiness), GET
 * /health/live (the process answers: liveness, no dependency checked, so a database outage does
 * not get the process restarted) and GET /queue/stats: is it working, and how much is waiting.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { uptimeSeconds, type RouteContext } from '../app-context.js';
import type { StoreConnection } from '../../store/store.js';

/** A dependency that does not answer within this time counts as down. */
const PROBE_TIMEOUT_MS = 2000;

async function probe(check: () => Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check().then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(
  app: FastifyInstance,
  ctx: RouteContext<StoreConnection>,
): void {
  const healthSchema = {
    type: 'object',
    properties: {
      status: { type: 'string', enum: ['healthy', 'unhealthy'] },
      database: { type: 'boolean' },
      queue: { type: 'boolean' },
      uptime_seconds: { type: 'number' },
      store_backend: { type: 'string' },
      duplicate_policy: {
        type: 'string',
        enum: ['first-wins', 'reject-conflicts'],
        description: 'What happens to a duplicate that differs from the stored event.',
      },
      queue_backend: { type: 'string' },
      queue_durability: {
        type: 'string',
        description:
          'What survives a crash of the queue server: aof-always, aof-everysec, rdb-snapshots, none, or <store>-transaction for the inbox, jetstream-file-r<replicas> for JetStream; on Redis Cluster the mode of one node, with +wait-<n> when REDIS_MIN_REPLICAS is set.',
      },
    },
  } as const;

  const health = async (_request: FastifyRequest, reply: FastifyReply) => {
    let durability = 'unknown';
    const [database, queue] = await Promise.all([
      probe(() => ctx.store.ping()),
      probe(async () => {
        await ctx.queue.ping();
        durability = (await ctx.queue.durability()).mode;
      }),
    ]);
    const healthy = database && queue;
    return reply.status(healthy ? 200 : 503).send({
      status: healthy ? 'healthy' : 'unhealthy',
      database,
      queue,
      uptime_seconds: uptimeSeconds(ctx),
      store_backend: ctx.store.kind,
      duplicate_policy: ctx.config.duplicatePolicy,
      queue_backend: ctx.queue.kind,
      queue_durability: durability,
    });
  };
  for (const url of ['/health', '/health/ready']) {
    app.get(
      url,
      {
        schema: {
          summary:
            url === '/health'
              ? 'Health of the database and the queue (503 when either is down)'
              : 'Readiness: the same check as /health (503 when the database or the queue is down)',
          tags: ['operations'],
          response: { 200: healthSchema, 503: healthSchema },
        },
      },
      health,
    );
  }

  app.get(
    '/health/live',
    {
      schema: {
        summary: 'Liveness: 200 while the process answers; checks no dependency',
        tags: ['operations'],
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['alive'] },
              uptime_seconds: { type: 'number' },
            },
          },
        },
      },
    },
    async () => ({ status: 'alive', uptime_seconds: uptimeSeconds(ctx) }),
  );

  app.get(
    '/queue/stats',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'What waits in the queue',
        tags: ['operations'],
        response: {
          200: {
            type: 'object',
            properties: {
              queue_size: { type: 'integer', description: 'Events accepted but not yet applied.' },
              queue_messages: { type: 'integer', description: 'Publish requests behind them.' },
              queue_type: { type: 'string' },
              worker_count: { type: 'integer', description: 'Worker loops in this process.' },
              workers_enabled: { type: 'boolean' },
            },
          },
          503: { $ref: 'Error#' },
        },
      },
    },
    async () => {
      const depth = await ctx.queue.depth();
      const workers = ctx.workers();
      return {
        queue_size: depth.events,
        queue_messages: depth.messages,
        queue_type: ctx.queue.kind,
        worker_count: workers.running,
        workers_enabled: workers.enabled,
      };
    },
  );
}
