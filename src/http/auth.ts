/**
 * API keys (API_KEYS). Each route names the scope it needs in its `config.scope`; a route without
 * one (health, the API description) is open. Without API_KEYS every route is open, as in the
 * system this one replaces, and routes that need `admin` do not exist at all.
 *
 * A key arrives as `Authorization: Bearer <secret>` or `X-API-Key: <secret>`. Its SHA-256 is
 * compared with every configured digest in constant time, so neither the timing nor an early exit
 * tells how much of a guess was right; secrets are never kept or logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiKey, Scope } from '../config.js';
import { AggregatorError } from '../errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a caller's key needs for this route when API keys are configured. */
    scope?: Scope;
    /**
     * The route answers refusals (401, 403, 429) in its wire protocol's own error shape (OTLP's
     * google.rpc.Status, Elasticsearch's error object, Loki's text), not the service's Error.
     */
    protocolErrors?: boolean;
  }
  interface FastifyRequest {
    /** Name of the API key the request came with, once it was checked. */
    apiKeyName?: string;
  }
}

function presentedSecret(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match !== null) return match[1];
  }
  const apiKey = request.headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey !== '' ? apiKey : undefined;
}

/** The configured key whose secret this is, checking every key whatever matches. */
export function findKey(keys: readonly ApiKey[], secret: string): ApiKey | undefined {
  const digest = createHash('sha256').update(secret).digest();
  let found: ApiKey | undefined;
  for (const key of keys) {
    if (timingSafeEqual(digest, key.digest)) found = key;
  }
  return found;
}

export function allows(key: ApiKey, scope: Scope): boolean {
  return key.scopes.includes('admin') || key.scopes.includes(scope);
}

/** True when at least one key may use admin routes, which exist only then. */
export function hasAdminKey(keys: readonly ApiKey[]): boolean {
  return keys.some((k) => k.scopes.includes('admin'));
}

export function registerAuth(app: FastifyInstance, keys: readonly ApiKey[]): void {
  if (keys.length === 0) return;
  app.decorateRequest('apiKeyName', undefined);
  app.addHook('onRequest', async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    if (scope === undefined) return;
    const secret = presentedSecret(request);
    const key = secret === undefined ? undefined : findKey(keys, secret);
    if (key === undefined) {
      void reply.header('www-authenticate', 'Bearer realm="log-aggregator"');
      throw new AggregatorError(
        'AGG_ERR_UNAUTHORIZED',
        secret === undefined
          ? 'This route needs an API key: send Authorization: Bearer <key> or X-API-Key'
          : 'The API key is not valid',
      );
    }
    request.apiKeyName = key.name;
    if (!allows(key, scope)) {
      throw new AggregatorError(
        'AGG_ERR_FORBIDDEN',
        `The API key "${key.name}" lacks the ${scope} scope this route needs`,
      );
    }
  });
}
