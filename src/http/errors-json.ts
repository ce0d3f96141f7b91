/**
 * Turns any error reaching Fastify into the API's error body
 * `{statusCode, code, error, message, details}`, with `Retry-After` where waiting helps.
 * Validation failures also carry `detail` in the loc/msg/type shape of the replaced system.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AggregatorError, isErrorCode, type ErrorCode, type ErrorDetail } from '../errors.js';

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
      return `must match the pattern ${String(error.params.pattern)}`;
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

/**
 * Fastify's own request-time errors, by their FST_ERR_* code (fastify/lib/errors.js). Each keeps
 * the status Fastify gives it; a unit test checks every one.
 */
const FRAMEWORK_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'AGG_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'AGG_ERR_BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'AGG_ERR_BAD_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'AGG_ERR_BAD_REQUEST',
  FST_ERR_ROUTE_MISSING_CONTENT: 'AGG_ERR_BAD_REQUEST',
  FST_ERR_ROUTE_MISSING_CONTENT_TYPE: 'AGG_ERR_BAD_REQUEST',
  FST_ERR_INVALID_URL: 'AGG_ERR_BAD_URL',
  FST_ERR_BAD_URL: 'AGG_ERR_BAD_URL',
  FST_ERR_MAX_PARAM_LENGTH: 'AGG_ERR_PATH_TOO_LONG',
  FST_ERR_NOT_FOUND: 'AGG_ERR_NOT_FOUND',
};

/**
 * Client errors raised by plugins without a code of ours, by HTTP status: @fastify/static (through
 * @fastify/send) answers 400, 403, 412 and 416; @fastify/rate-limit 429.
 */
const CLIENT_STATUSES: Readonly<Record<number, ErrorCode>> = {
  400: 'AGG_ERR_BAD_REQUEST',
  403: 'AGG_ERR_FORBIDDEN',
  404: 'AGG_ERR_NOT_FOUND',
  412: 'AGG_ERR_PRECONDITION_FAILED',
  413: 'AGG_ERR_BODY_TOO_LARGE',
  414: 'AGG_ERR_PATH_TOO_LONG',
  415: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
  416: 'AGG_ERR_RANGE_NOT_SATISFIABLE',
  429: 'AGG_ERR_RATE_LIMITED',
};

/**
 * The registry error an error reaching Fastify answers as. Ours pass as they are; schema
 * validation becomes 422 with details; Fastify's codes and plugins' client statuses keep their
 * status; anything else is a 500 whose cause goes to the log.
 */
export function toAggregatorError(error: FastifyError): AggregatorError {
  if (error instanceof AggregatorError) return error;
  // A plugin's error carrying one of our codes (request decoding copies them onto zlib's error).
  if (isErrorCode(error.code)) {
    const { details } = error as { details?: readonly ErrorDetail[] };
    return new AggregatorError(error.code, error.message, details ?? []);
  }
  if (error.validation !== undefined) {
    const details = validationDetails(error.validation);
    const summary = details.map((d) => `${d.field} ${d.reason}`).join('; ');
    return error.validationContext === 'body'
      ? new AggregatorError('AGG_ERR_VALIDATION', summary, details)
      : new AggregatorError('AGG_ERR_INVALID_QUERY', summary, details);
  }
  const framework = typeof error.code === 'string' ? FRAMEWORK_CODES[error.code] : undefined;
  if (framework !== undefined) {
    // Fastify's "Unsupported Media Type [text/plain]" says no remedy; ours names the type to send.
    const message = framework === 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE' ? undefined : error.message;
    return new AggregatorError(framework, message);
  }
  // A body parser's own syntax error (no Fastify code): the body is not JSON.
  if (error instanceof SyntaxError) return new AggregatorError('AGG_ERR_BAD_JSON', error.message);
  const status = error.statusCode ?? (error as { status?: number }).status;
  const client = status === undefined ? undefined : CLIENT_STATUSES[status];
  if (client !== undefined) return new AggregatorError(client, error.message);
  return new AggregatorError('AGG_ERR_INTERNAL', undefined, [], { cause: error });
}

/** Logs what deserves it and gives the status and body to answer `error` with. */
function answerFor(error: FastifyError, request: FastifyRequest) {
  const mapped = toAggregatorError(error);
  if (mapped.statusCode === 503) {
    // Expected under load or during an outage: one short line, no stack.
    request.log.warn({ code: mapped.code }, mapped.message);
  } else if (mapped.statusCode >= 500) {
    request.log.error({ err: mapped.cause ?? error, code: mapped.code }, mapped.message);
  }
  const body: Record<string, unknown> = {
    statusCode: mapped.statusCode,
    code: mapped.code,
    error: STATUS_CODES[mapped.statusCode] ?? 'Error',
    message: mapped.message,
    details: mapped.details,
  };
  if (mapped.code === 'AGG_ERR_VALIDATION') body.detail = legacyDetail(mapped.details, 'body');
  return { mapped, body };
}

/** The error handler of every route and of the not-found handler. */
export function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const { mapped, body } = answerFor(error, request);
  // A plugin's client error may name headers its answer needs (a 416 its Content-Range), as
  // Fastify's default handler would send them.
  const headers = (error as { headers?: Record<string, string> }).headers;
  if (mapped.statusCode < 500 && headers !== undefined) void reply.headers(headers);
  if (mapped.retryAfterSeconds !== undefined) {
    void reply.header('retry-after', String(mapped.retryAfterSeconds));
  }
  return reply.status(mapped.statusCode).send(body);
}

/**
 * Fastify's `frameworkErrors`: errors raised while routing, before any route exists for the
 * request (a path that is not valid percent-encoding, a path parameter over the router's length
 * limit). No route means no hook and no serializer, so the body is written here, with the request
 * id the hooks would have added.
 */
export function sendFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const { mapped, body } = answerFor(error, request);
  void reply
    .status(mapped.statusCode)
    .header('x-request-id', request.id)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(body));
}
