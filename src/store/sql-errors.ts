import { AggregatorError, StoreRejectedError, StoreUnavailableError } from '../errors.js';

/**
 * What a PostgreSQL error means for the caller, by SQLSTATE. Shared by both drivers: PGlite is
 * PostgreSQL and reports the same codes.
 */

export type SqlFailure =
  /** A concurrency conflict (deadlock, serialization); the same statement may simply be retried. */
  | 'retry'
  /** The data itself is refused (bad value, constraint); retrying the same data fails again. */
  | 'data'
  /** The server is gone, starting, shutting down or out of resources; try again later. */
  | 'unavailable'
  /** A bug or a schema problem. */
  | 'other';

export function classifySqlState(code: string | undefined): SqlFailure {
  if (code === undefined) return 'other';
  if (code === '40P01' || code === '40001') return 'retry';
  const family = code.slice(0, 2);
  switch (family) {
    case '22': // data exception: invalid text, \u0000 in jsonb, out-of-range timestamp…
    case '23': // integrity constraint violation
    case '54': // program limit exceeded: value too large for an index row…
      return 'data';
    case '08': // connection exception
    case '53': // insufficient resources
    case '57': // operator intervention: admin shutdown, cannot connect now
    case '58': // system error
      return 'unavailable';
    default:
      return 'other';
  }
}

const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/** True for a socket-level failure of a client library (not a SQLSTATE). */
export function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable|Connection refused/i.test(
    error.message,
  );
}

/** A deadlock or serialization failure: the whole statement rolled back and may run again. */
export class SqlConflictError extends Error {
  constructor(
    readonly sqlState: string,
    cause: unknown,
  ) {
    super(`transaction conflict (${sqlState})`, { cause });
    this.name = 'SqlConflictError';
  }
}

/**
 * Turns an engine or client error into the error the rest of the service understands. Both
 * drivers call this, so a failure means the same thing on PostgreSQL and on PGlite.
 */
export function mapSqlError(error: unknown): Error {
  if (error instanceof StoreUnavailableError || error instanceof StoreRejectedError) return error;
  const sqlState = (error as { code?: unknown } | null)?.code;
  const code =
    typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState) ? sqlState : undefined;
  const failure = classifySqlState(code);
  switch (failure) {
    case 'retry':
      return new SqlConflictError(code ?? '', error);
    case 'data':
      return new StoreRejectedError(error instanceof Error ? error.message : String(error), error);
    case 'unavailable':
      return new StoreUnavailableError(error);
    case 'other':
      if (isNetworkError(error)) return new StoreUnavailableError(error);
      return error instanceof Error ? error : new Error(String(error));
    default: {
      const unreachable: never = failure;
      return unreachable;
    }
  }
}

/**
 * What a failed *read* answers as, given the error its driver already mapped (mapSqlError).
 * "The database refused the events" is about writes: a read the database fails on a value or a
 * conflict is not the client's doing. Connection-class failures, timeouts and cancellations
 * (SQLSTATE classes 08, 53, 57, 58) and a conflict stay or become StoreUnavailableError (503,
 * retry later); everything else, data exceptions included, becomes AGG_ERR_INTERNAL (500), with
 * the driver's error kept as the cause for the log.
 */
export function mapSqlReadError(error: unknown): Error {
  if (error instanceof StoreUnavailableError) return error;
  if (error instanceof SqlConflictError) return new StoreUnavailableError(error.cause);
  if (error instanceof StoreRejectedError) {
    return new AggregatorError('AGG_ERR_INTERNAL', undefined, [], { cause: error.cause });
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Runs a read, its failure mapped by mapSqlReadError. */
export async function reading<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (error) {
    throw mapSqlReadError(error);
  }
}
