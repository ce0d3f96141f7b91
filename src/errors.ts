/**
 * The error registry: every error the service answers with has one AGG_ERR_* code, one HTTP
 * status and one message here. docs/errors.md lists the same codes; a test keeps the two equal.
 */

export interface ErrorDetail {
  /** Where the problem is, e.g. `events[3].timestamp`. */
  readonly field: string;
  /** Why it was refused, in words a client developer can act on. */
  readonly reason: string;
}

export const ERRORS = {
  AGG_ERR_VALIDATION: { status: 422, message: 'The request body does not match the schema' },
  AGG_ERR_INVALID_QUERY: { status: 422, message: 'The query string is invalid' },
  AGG_ERR_BAD_JSON: { status: 400, message: 'The request body is not valid JSON' },
  AGG_ERR_BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  AGG_ERR_BAD_URL: { status: 400, message: 'The request path is not valid percent-encoding' },
  AGG_ERR_PATH_TOO_LONG: { status: 414, message: 'A path segment is too long' },
  AGG_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message:
      'The body must be application/json or application/*+json (POST /publish also takes application/x-ndjson)',
  },
  AGG_ERR_UNSUPPORTED_ENCODING: {
    status: 415,
    message: 'The Content-Encoding of the body is not supported',
  },
  AGG_ERR_BAD_ENCODING: { status: 400, message: 'The body is not valid in its Content-Encoding' },
  AGG_ERR_BODY_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  AGG_ERR_TOO_MANY_EVENTS: { status: 413, message: 'Too many events in one request' },
  AGG_ERR_UNAUTHORIZED: { status: 401, message: 'A valid API key is required' },
  AGG_ERR_FORBIDDEN: { status: 403, message: 'The API key lacks the scope this needs' },
  AGG_ERR_RATE_LIMITED: { status: 429, message: 'Too many requests; retry later' },
  AGG_ERR_QUEUE_FULL: { status: 503, message: 'The queue is full; retry later' },
  AGG_ERR_STORE_UNAVAILABLE: { status: 503, message: 'The database is unavailable' },
  AGG_ERR_QUEUE_UNAVAILABLE: { status: 503, message: 'The queue is unavailable' },
  AGG_ERR_SHUTTING_DOWN: { status: 503, message: 'The service is shutting down' },
  AGG_ERR_STORE_REJECTED: { status: 422, message: 'The database refused the events' },
  AGG_ERR_CONFLICT: {
    status: 409,
    message: 'A duplicate differs from the stored copy of its event',
  },
  AGG_ERR_NOT_FOUND: { status: 404, message: 'Route not found' },
  AGG_ERR_PRECONDITION_FAILED: { status: 412, message: 'A precondition of the request failed' },
  AGG_ERR_RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested range is not satisfiable' },
  AGG_ERR_BAD_PROTOBUF: {
    status: 400,
    message: 'The request body is not a valid message of the protocol',
  },
  AGG_ERR_INTERNAL: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** True for a registry code (e.g. one a plugin copied onto its own error). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}

/** An error the HTTP layer can answer with as it is. */
export class AggregatorError extends Error {
  readonly statusCode: number;
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details: readonly ErrorDetail[] = [],
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message ?? ERRORS[code].message, { cause: options?.cause });
    this.name = 'AggregatorError';
    this.statusCode = ERRORS[code].status;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

/** The store could not be reached or lost its connection; the operation may succeed later. */
export class StoreUnavailableError extends AggregatorError {
  constructor(cause: unknown) {
    super('AGG_ERR_STORE_UNAVAILABLE', undefined, [], { cause, retryAfterSeconds: 1 });
    this.name = 'StoreUnavailableError';
  }
}

/** The queue backend could not be reached; the operation may succeed later. */
export class QueueUnavailableError extends AggregatorError {
  constructor(cause: unknown) {
    super('AGG_ERR_QUEUE_UNAVAILABLE', undefined, [], { cause, retryAfterSeconds: 1 });
    this.name = 'QueueUnavailableError';
  }
}

/**
 * An atomic publish under DUPLICATE_POLICY=reject-conflicts held duplicates that differ from the
 * stored copies of their events; nothing of it was stored.
 */
export class ConflictRejectedError extends AggregatorError {
  constructor(readonly outcomes: readonly { index: number; conflict: boolean }[]) {
    const conflicting = outcomes.filter((o) => o.conflict).map((o) => o.index);
    super(
      'AGG_ERR_CONFLICT',
      `${conflicting.length} event(s) repeat a stored (topic, event_id) with a different timestamp, source or payload; nothing was stored`,
      conflicting.map((i) => ({
        field: `events[${i}]`,
        reason: 'differs from the stored event with this topic and event_id',
      })),
    );
    this.name = 'ConflictRejectedError';
  }
}

/**
 * The database refused the data itself (a value it cannot represent). Retrying the same events
 * fails the same way, so a worker parks them in the dead-letter table instead.
 */
export class StoreRejectedError extends AggregatorError {
  constructor(reason: string, cause: unknown) {
    super('AGG_ERR_STORE_REJECTED', `The database refused the events: ${reason}`, [], { cause });
    this.name = 'StoreRejectedError';
  }
}
