/**
 * Error answers of the shipper protocols. Each protocol route scope renders errors in its own
 * shape (OTLP: google.rpc.Status; Elasticsearch: its error object; Loki: plain text); this maps
 * the error to the registry error and status, sets `Retry-After` and logs as the main handler does.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { AggregatorError } from '../errors.js';
import { toAggregatorError } from './errors-json.js';

/**
 * The registry error for `error`, with `Retry-After` set on the reply where waiting helps and a log
 * line for server-side failures. `badInputStatus` replaces 422 where a protocol allows only 400.
 */
export function protocolError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): { readonly error: AggregatorError; readonly status: number } {
  const mapped = toAggregatorError(error);
  if (mapped.statusCode === 503) {
    request.log.warn({ code: mapped.code }, mapped.message);
  } else if (mapped.statusCode >= 500) {
    request.log.error({ err: mapped.cause ?? error, code: mapped.code }, mapped.message);
  }
  if (mapped.retryAfterSeconds !== undefined) {
    void reply.header('retry-after', String(mapped.retryAfterSeconds));
  }
  return { error: mapped, status: mapped.statusCode };
}

/** Whether the request's body is JSON by its Content-Type (`application/json`, `…+json`). */
export function isJsonRequest(request: FastifyRequest): boolean {
  const type = request.headers['content-type'] ?? '';
  return /^application\/(?:[\w.-]+\+)?json\b/i.test(type);
}
