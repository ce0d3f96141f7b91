/**
 * What the API description says about the doors in front of each route, derived from the same
 * facts the doors act on, so the two cannot drift: a route's `config.scope` (see auth.ts) and the
 * rate limit. Routes declare only their scope and their own answers; this adds, per route,
 * `security` and the 401/403 answers when API keys are configured (and nothing when the API is
 * open), and the 429 answer when rate limiting is on and the route is not exempt from it.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { ApiKey } from '../config.js';

/** Routes the rate limit never counts: health checks must answer however busy a client is. */
const RATE_LIMIT_EXEMPT: ReadonlySet<string> = new Set([
  '/health',
  '/health/ready',
  '/health/live',
]);

/** True for a route pattern (e.g. `/health`) the rate limit spares. */
export function isRateLimitExempt(routeUrl: string | undefined): boolean {
  return routeUrl !== undefined && RATE_LIMIT_EXEMPT.has(routeUrl);
}

/** OpenAPI: the two ways a key may be sent (declared only when API_KEYS is set). */
export const securitySchemes = {
  bearerAuth: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <key>' },
  apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
} as const;

/** OpenAPI `security` of a route that needs a key: either scheme will do. */
const keyRequired: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

const errorRef = { $ref: 'Error#' } as const;
/** A refusal a shipper route answers in its protocol's shape, whatever that shape is. */
const protocolErrorAnswer = {
  description: "Refused in the wire protocol's own error shape (docs/shippers.md)",
} as const;

export interface DoorFacts {
  /** The configured API keys (API_KEYS); none means every route is open. */
  readonly apiKeys: readonly ApiKey[];
  /** Whether the rate limit is on (RATE_LIMIT_MAX > 0). */
  readonly rateLimited: boolean;
}

/** The answers the doors give, which only this module states. */
const DOOR_STATUSES = ['401', '403', '429'];

/**
 * The schema a route is described with once its doors are added. The route's own schema is not
 * changed (several routes may share parts of it). Whatever the route itself says of its doors
 * (`security`, 401, 403, 429) is replaced, so the description cannot say otherwise than the facts.
 */
export function withDoors(
  route: Pick<RouteOptions, 'url' | 'config' | 'schema'>,
  facts: DoorFacts,
) {
  const schema = route.schema;
  if (schema === undefined || schema.hide === true) return schema;
  const config = route.config as { scope?: string; protocolErrors?: boolean } | undefined;
  const scope = config?.scope;
  const doorAnswer = config?.protocolErrors === true ? protocolErrorAnswer : errorRef;
  const keyed = scope !== undefined && facts.apiKeys.length > 0;
  const limited = facts.rateLimited && !isRateLimitExempt(route.url);
  const response: Record<string, unknown> = { ...(schema.response as object | undefined) };
  for (const status of DOOR_STATUSES) delete response[status];
  if (keyed) Object.assign(response, { 401: doorAnswer, 403: doorAnswer });
  if (limited) response[429] = doorAnswer;
  const described: Record<string, unknown> = { ...schema };
  delete described.security;
  if (keyed) described.security = keyRequired;
  if (schema.response !== undefined || Object.keys(response).length > 0) {
    described.response = response;
  }
  return described;
}

/** Registers the hook; call it before any route it should describe is added. */
export function describeDoors(app: FastifyInstance, facts: DoorFacts): void {
  app.addHook('onRoute', (route) => {
    route.schema = withDoors(route, facts);
  });
}
