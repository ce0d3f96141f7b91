/**
 * Turns any error reaching Fastify into the API's error body
 * `{statusCode, code, error, message, details}`, with `Retry-After` where waiting helps.
 * Validation failures also carry `detail` in the loc/msg/type shape of the replaced system.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AggregatorError, type ErrorDetail } from '../errors.js';

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** `/events/0/topic` → `events[0].topic` */
function fieldOf(instancePath: string, missing?: unknown): string {
  const parts = instancePath.split('/').filter((p) => p !== '');
  if (typeof missing === 'string') parts.push(missing);
  let out = '';
  for (const part of parts) {
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out === '' ? 'body' : out;
}

function reasonOf(error: AjvError): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'format':
      return 'must be an ISO 8601 date and time, e.g. 2024-05-01T12:00:00Z (no offset means UTC)';
    case 'pattern':
      return 'must not be blank or contain control characters';
    case 'minLength':
      return 'must not be empty';
    case 'maxLength':
      return `must be at most ${String(error.params.limit)} characters`;
    case 'minItems':
      return `must contain at least ${String(error.params.limit)} item`;
    case 'type':
      return `must be of type ${String(error.params.type)}`;
    default:
      return error.message ?? 'is invalid';
  }
}

export function validationDetails(errors: readonly AjvError[]): ErrorDetail[] {
  const seen = new Set<string>();
  const details: ErrorDetail[] = [];
  for (const e of errors) {
    // A failed `pattern` on an empty string repeats what `minLength` already said.
    const detail = {
      field: fieldOf(e.instancePath, e.params.missingProperty),
      reason: reasonOf(e),
    };
    const key = `${detail.field}\u0000${detail.reason}`;
    if (
      seen.has(key) ||
      (e.keyword === 'pattern' && seen.has(`${detail.field}\u0000must not be empty`))
    ) {
      continue;
    }
    seen.add(key);
    details.push(detail);
  }
  return details;
}

/** The replaced system's `detail` list: `loc` is the path as an array, starting with `body`. */
function legacyDetail(details: readonly ErrorDetail[], part: string) {
  return details.map((d) => ({
    loc: [
      part,
      ...d.field
        .replace(/\[(\d+)\]/g, '.$1')
        .split('.')
        .filter((p) => p !== '' && p !== 'body')
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
    ],
    msg: d.reason,
    type: 'value_error',
  }));
}

/** Any error reaching Fastify as the registry error it is answered with. */
export function toAggregatorError(error: FastifyError): AggregatorError {
  if (error instanceof AggregatorError) return error;
  if (error.validation !== undefined) {
    const details = validationDetails(error.validation);
    if (error.validationContext === 'body') {
      const summary = details.map((d) => `${d.field} ${d.reason}`).join('; ');
      return new AggregatorError('AGG_ERR_VALIDATION', summary, details);
    }
    return new AggregatorError(
      'AGG_ERR_INVALID_QUERY',
      details.map((d) => `${d.field} ${d.reason}`).join('; '),
      details,
    );
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AggregatorError('AGG_ERR_BODY_TOO_LARGE', error.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AggregatorError('AGG_ERR_UNSUPPORTED_MEDIA_TYPE');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AggregatorError('AGG_ERR_BAD_JSON', error.message);
    default:
      break;
  }
  if (error instanceof SyntaxError || error.statusCode === 400) {
    return new AggregatorError('AGG_ERR_BAD_JSON', error.message);
  }
  // Client errors raised by plugins (a static file plugin's 403 or 404) stay client errors.
  if (error.statusCode === 403) return new AggregatorError('AGG_ERR_FORBIDDEN', error.message);
  if (error.statusCode === 404) return new AggregatorError('AGG_ERR_NOT_FOUND', error.message);
  return new AggregatorError('AGG_ERR_INTERNAL', undefined, [], { cause: error });
}

export function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const mapped = toAggregatorError(error);
  if (mapped.statusCode === 503) {
    // Expected under load or during an outage: one short line, no stack.
    request.log.warn({ code: mapped.code }, mapped.message);
  } else if (mapped.statusCode >= 500) {
    request.log.error({ err: mapped.cause ?? error, code: mapped.code }, mapped.message);
  }
  if (mapped.retryAfterSeconds !== undefined) {
    void reply.header('retry-after', String(mapped.retryAfterSeconds));
  }
  const body: Record<string, unknown> = {
    statusCode: mapped.statusCode,
    code: mapped.code,
    error: STATUS_CODES[mapped.statusCode] ?? 'Error',
    message: mapped.message,
    details: mapped.details,
  };
  if (mapped.code === 'AGG_ERR_VALIDATION') body.detail = legacyDetail(mapped.details, 'body');
  return reply.status(mapped.statusCode).send(body);
}
