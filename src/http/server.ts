/**
 * Builds the HTTP API (without listening), so tests drive the same server with `inject` or a real
 * port. Request bodies are validated strictly (no type coercion: `"event_id": 7` is an error, not
 * `"7"`); query strings are coerced, as they are always text.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import helmet from 'helmet';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
} from 'fastify';
import type { Logger } from 'pino';
import { AggregatorError } from '../errors.js';
import type { AppContext } from './app-context.js';
import { registerAuth } from './auth.js';
import { sendError, sendFrameworkError } from './errors-json.js';
import { registerJsonBodyParser } from './json-body.js';
import { describeDoors, isRateLimitExempt, securitySchemes } from './route-doors.js';
import { registerRequestDecoding } from './request-decoding.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerDeadLetterRoutes } from './routes/dead-letters.js';
import { registerDedupRoutes } from './routes/dedup.js';
import { registerEsBulkRoutes } from './routes/es-bulk.js';
import { registerEventRoutes } from './routes/events.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerHistogramRoutes } from './routes/histogram.js';
import { registerLokiRoutes } from './routes/loki.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerOtlpRoutes } from './routes/otlp.js';
import { registerPublishRoutes } from './routes/publish.js';
import { registerStatsRoutes } from './routes/stats.js';
import { registerStreamRoutes } from './routes/stream.js';
import { createBodyAjv, createQueryAjv } from './schemas/validators.js';
import { errorSchema, storedEventSchema } from './schemas/event-schemas.js';

const packageJson = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string; description: string };

function validators() {
  return { body: createBodyAjv(), query: createQueryAjv() };
}

export async function buildServer(ctx: AppContext, logger: Logger): Promise<FastifyInstance> {
  const loggerInstance: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit: ctx.config.maxBodyBytes,
    // One log line per request at most, and only at debug: the hot path stays quiet.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Requests on kept-alive connections after close() begins get AGG_ERR_SHUTTING_DOWN below.
    return503OnClosing: false,
    // Paths that fail before routing (bad percent-encoding) get the same error body and headers
    // as the rest; no hook runs for them. (Only called once listening, after the headers exist.)
    frameworkErrors: (error, request, reply) => {
      securityHeaders(request.raw, reply.raw, () => sendFrameworkError(error, request, reply));
    },
  });

  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) =>
    (httpPart === 'body' ? ajv.body : ajv.query).compile(schema),
  );
  app.addSchema(errorSchema);
  app.addSchema(storedEventSchema);
  registerJsonBodyParser(app);
  await registerRequestDecoding(app);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Log aggregator',
        version: packageJson.version,
        description: packageJson.description,
      },
      // Key schemes exist only when keys do; the OpenAPI of an open API asks for none.
      components: ctx.config.apiKeys.length > 0 ? { securitySchemes } : {},
      tags: [
        { name: 'events', description: 'Publish and read events' },
        { name: 'stats', description: 'Counters' },
        { name: 'operations', description: 'Health and queue' },
        { name: 'shippers', description: 'Standard log shippers (docs/shippers.md)' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  describeDoors(app, { apiKeys: ctx.config.apiKeys, rateLimited: ctx.config.rateLimitMax > 0 });
  // Security headers on every answer; the API description page needs its own scripts and styles.
  // The service often runs on plain HTTP behind a TLS proxy: that proxy owns HSTS and upgrades.
  // helmet's middleware is built once; the Fastify plugin rebuilt it for every request (2% of
  // the API process's CPU under load).
  const securityHeaders = helmet({
    hsts: false,
    contentSecurityPolicy: {
      directives: {
        upgradeInsecureRequests: null,
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        scriptSrc: ["'self'", ...app.swaggerCSP.script],
        styleSrc: ["'self'", ...app.swaggerCSP.style],
      },
    },
  });
  app.addHook('onRequest', (request, reply, done) => {
    securityHeaders(request.raw, reply.raw, (error?: unknown) => {
      done(error instanceof Error ? error : undefined);
    });
  });
  registerAuth(app, ctx.config.apiKeys);
  if (ctx.config.rateLimitMax > 0) {
    await app.register(rateLimit, {
      max: ctx.config.rateLimitMax,
      timeWindow: ctx.config.rateLimitWindowMs,
      // After the key check, before the body is read: a client over its limit costs no parsing.
      hook: 'preParsing',
      // With Redis (one node or a cluster) every API process counts in the same place, so N
      // processes allow the limit once, not N times; without it the count is this process's.
      redis: ctx.queue.sharedRedis,
      nameSpace: `${ctx.config.redisKeyPrefix}:rate-limit:`,
      // Redis away: publishing answers 503 anyway; other routes are served unlimited meanwhile.
      skipOnError: true,
      keyGenerator: (request) =>
        request.apiKeyName === undefined ? `ip:${request.ip}` : `key:${request.apiKeyName}`,
      allowList: (request) => isRateLimitExempt(request.routeOptions.url),
      errorResponseBuilder: (_request, context) =>
        new AggregatorError(
          'AGG_ERR_RATE_LIMITED',
          `At most ${context.max} requests per ${context.after}; retry in ${Math.ceil(context.ttl / 1000)} s`,
          [],
          { retryAfterSeconds: Math.ceil(context.ttl / 1000) },
        ),
    });
  }

  app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      new AggregatorError(
        'AGG_ERR_NOT_FOUND',
        `Route ${request.method} ${request.url.split('?')[0]} not found`,
      ) as unknown as FastifyError,
      request,
      reply,
    ),
  );
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    void reply.header('connection', 'close');
    throw new AggregatorError('AGG_ERR_SHUTTING_DOWN', undefined, [], { retryAfterSeconds: 1 });
  });
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.debug(
      { method: request.method, url: request.url, status: reply.statusCode, ms: reply.elapsedTime },
      'request',
    );
  });

  registerPublishRoutes(app, ctx);
  registerEventRoutes(app, ctx);
  registerHistogramRoutes(app, ctx);
  registerStatsRoutes(app, ctx);
  registerHealthRoutes(app, ctx);
  registerDeadLetterRoutes(app, ctx);
  registerMetricsRoutes(app, ctx);
  registerStreamRoutes(app, ctx);
  registerDedupRoutes(app, ctx);
  registerDashboardRoutes(app);
  // Shipper protocols, each in a scope of its own with its own body parsers and error shape.
  await registerOtlpRoutes(app, ctx);
  await registerEsBulkRoutes(app, ctx);
  await registerLokiRoutes(app, ctx);
  await app.ready();
  return app;
}
