/**
 * Every error that can reach the HTTP error handler answers with a registry code whose status is
 * the one the error came with: Fastify's own request-time codes, the client statuses plugins raise
 * (@fastify/static through @fastify/send, @fastify/rate-limit), schema validation and parse errors.
 */
import { errorCodes, type FastifyError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { AggregatorError, ERRORS, StoreRejectedError } from '../../src/errors.js';
import { toAggregatorError } from '../../src/http/errors-json.js';
import { mapRedisError } from '../../src/queue/redis-streams/redis-connection.js';
import type { SqlDriver } from '../../src/store/sql-driver.js';
import { mapSqlError, mapSqlReadError } from '../../src/store/sql-errors.js';
import { SqlStore } from '../../src/store/sql/sql-store.js';

type FastifyErrorClass = new (...args: string[]) => FastifyError;
const fastifyErrors = Object.entries(
  errorCodes as unknown as Record<string, FastifyErrorClass>,
).map(([code, ErrorClass]) => ({ code, error: new ErrorClass('a', 'b', 'c') }));

/** How http-errors (used by @fastify/send) shapes a client error. */
function pluginError(status: number): FastifyError {
  return Object.assign(new Error(`plugin ${status}`), {
    status,
    statusCode: status,
    expose: true,
  }) as unknown as FastifyError;
}

describe('error mapping', () => {
  it('maps each of Fastify request-time codes to its registry code', () => {
    const expected: Record<string, string> = {
      FST_ERR_CTP_BODY_TOO_LARGE: 'AGG_ERR_BODY_TOO_LARGE',
      FST_ERR_CTP_INVALID_MEDIA_TYPE: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
      FST_ERR_CTP_EMPTY_JSON_BODY: 'AGG_ERR_BAD_JSON',
      FST_ERR_CTP_INVALID_JSON_BODY: 'AGG_ERR_BAD_JSON',
      FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'AGG_ERR_BAD_REQUEST',
      FST_ERR_ROUTE_MISSING_CONTENT: 'AGG_ERR_BAD_REQUEST',
      FST_ERR_ROUTE_MISSING_CONTENT_TYPE: 'AGG_ERR_BAD_REQUEST',
      FST_ERR_BAD_URL: 'AGG_ERR_BAD_URL',
      FST_ERR_INVALID_URL: 'AGG_ERR_BAD_URL',
      FST_ERR_MAX_PARAM_LENGTH: 'AGG_ERR_PATH_TOO_LONG',
      FST_ERR_NOT_FOUND: 'AGG_ERR_NOT_FOUND',
      FST_ERR_ASYNC_CONSTRAINT: 'AGG_ERR_INTERNAL',
    };
    for (const [code, aggregatorCode] of Object.entries(expected)) {
      const found = fastifyErrors.find((e) => e.code === code);
      expect(found, code).toBeDefined();
      const mapped = toAggregatorError(found?.error as FastifyError);
      expect(mapped.code, code).toBe(aggregatorCode);
      expect(mapped.statusCode, code).toBe(ERRORS[mapped.code].status);
    }
  });

  it('says what to send instead of an unsupported media type', () => {
    const found = fastifyErrors.find((e) => e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE');
    const mapped = toAggregatorError(found?.error as FastifyError);
    expect(mapped.message).toBe(ERRORS.AGG_ERR_UNSUPPORTED_MEDIA_TYPE.message);
  });

  it('keeps the status of every Fastify client error (4xx)', () => {
    const clientErrors = fastifyErrors.filter((e) => (e.error.statusCode ?? 500) < 500);
    expect(clientErrors.length).toBeGreaterThan(5);
    for (const { code, error } of clientErrors) {
      expect(toAggregatorError(error).statusCode, code).toBe(error.statusCode);
    }
  });

  it('answers Fastify programming errors (500) as internal errors', () => {
    // FST_ERR_HANDLER_TIMEOUT (503) needs the `handlerTimeout` route option, which no route sets.
    const serverErrors = fastifyErrors.filter(
      (e) => e.error.statusCode === 500 && e.code !== 'FST_ERR_HANDLER_TIMEOUT',
    );
    for (const { code, error } of serverErrors) {
      const mapped = toAggregatorError(error);
      expect(mapped.code, code).toBe('AGG_ERR_INTERNAL');
      expect(mapped.cause, code).toBe(error);
    }
  });

  it('keeps the status of client errors plugins raise without a code', () => {
    const expected: Record<number, string> = {
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
    for (const [status, code] of Object.entries(expected)) {
      const mapped = toAggregatorError(pluginError(Number(status)));
      expect(mapped.code, status).toBe(code);
      expect(mapped.statusCode, status).toBe(Number(status));
      expect(mapped.message, status).toBe(`plugin ${status}`);
    }
  });

  it('reads a 400 as bad JSON only when it is one', () => {
    expect(toAggregatorError(pluginError(400)).code).toBe('AGG_ERR_BAD_REQUEST');
    const syntax = new SyntaxError('Unexpected token') as unknown as FastifyError;
    expect(toAggregatorError(syntax).code).toBe('AGG_ERR_BAD_JSON');
  });

  it('turns schema validation into 422 with details, body and query apart', () => {
    const validation = [
      { instancePath: '/events/0', keyword: 'required', params: { missingProperty: 'topic' } },
    ];
    const body = toAggregatorError(
      Object.assign(new Error('x'), {
        validation,
        validationContext: 'body',
        statusCode: 400,
      }) as unknown as FastifyError,
    );
    expect(body).toMatchObject({ code: 'AGG_ERR_VALIDATION', statusCode: 422 });
    expect(body.details).toEqual([{ field: 'events[0].topic', reason: 'is required' }]);
    const query = toAggregatorError(
      Object.assign(new Error('x'), {
        validation: [
          { instancePath: '/limit', keyword: 'minimum', params: {}, message: 'too small' },
        ],
        validationContext: 'querystring',
        statusCode: 400,
      }) as unknown as FastifyError,
    );
    expect(query).toMatchObject({ code: 'AGG_ERR_INVALID_QUERY', statusCode: 422 });
  });

  it('passes our own errors through and hides anything else behind a 500', () => {
    const ours = new AggregatorError('AGG_ERR_QUEUE_FULL');
    expect(toAggregatorError(ours as unknown as FastifyError)).toBe(ours);
    const bug = new TypeError('x is undefined') as unknown as FastifyError;
    const mapped = toAggregatorError(bug);
    expect(mapped).toMatchObject({ code: 'AGG_ERR_INTERNAL', statusCode: 500 });
    expect(mapped.message).toBe('Internal error');
  });

  it('maps a failed read to 503 or 500, never to the refused-write 422', () => {
    const pgError = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code });
    const read = (code: string) =>
      toAggregatorError(mapSqlReadError(mapSqlError(pgError(code))) as FastifyError);
    // A write refused for its data is the client's 422; the same SQLSTATE on a read is ours.
    expect(mapSqlError(pgError('22P02'))).toMatchObject({ code: 'AGG_ERR_STORE_REJECTED' });
    for (const code of ['22P02', '22008', '23505', '54000', '42501', 'XX000']) {
      expect(read(code)).toMatchObject({ code: 'AGG_ERR_INTERNAL', statusCode: 500 });
    }
    for (const code of ['57014', '08006', '53300', '58030', '40001', '40P01']) {
      expect(read(code)).toMatchObject({ code: 'AGG_ERR_STORE_UNAVAILABLE', statusCode: 503 });
    }
    // The driver's error stays the cause, for the log.
    expect((read('22P02').cause as Error).message).toBe('sqlstate 22P02');
  });

  it('maps a refused value on every read of the SQL store to 500, never to the refused-write 422', async () => {
    // A driver whose every statement fails as the drivers report a data exception (22021: a NUL
    // in a parameter, 22P02: a row that cannot be rendered).
    const refused = () =>
      Promise.reject(
        mapSqlError(Object.assign(new Error('invalid byte sequence'), { code: '22021' })),
      );
    const driver: SqlDriver = {
      query: refused,
      exec: refused,
      transaction: refused,
      listen: refused,
      close: () => Promise.resolve(),
    };
    const store = new SqlStore(driver, 'pglite');
    const filter = { topic: 't', source: 's', terms: ['w'], fields: [{ path: ['a'], value: 1 }] };
    const reads: Record<string, () => Promise<unknown>> = {
      listEvents: () => store.listEvents({ ...filter, order: 'desc', limit: 10, offset: 0 }),
      listEventsWithoutSearch: () => store.listEvents({ order: 'asc', limit: 10, offset: 0 }),
      histogram: () =>
        store.histogram({
          ...filter,
          since: '2024-05-01T00:00:00.000Z',
          until: '2024-05-02T00:00:00.000Z',
          interval: '1h',
        }),
      eventsInIdRange: () => store.eventsInIdRange(1, 2),
      eventsAfterId: () => store.eventsAfterId(0, ['t'], 10),
      lastEventId: () => store.lastEventId(),
      countEvents: () => store.countEvents('t'),
      counters: () => store.counters(),
      topicSummaries: () => store.topicSummaries(),
      dedupStats: () => store.dedupStats('t'),
      verify: () => store.verify(),
      listConflicts: () => store.listConflicts({ topic: 't', limit: 10 }),
      receipt: () => store.receipt('m'),
      deadLetterCount: () => store.deadLetterCount(),
      deadLetteredEvents: () => store.deadLetteredEvents(),
      listDeadLetters: () => store.listDeadLetters({ limit: 10, offset: 0 }),
      'inbox.depth': () => store.inbox.depth(),
      'inbox.contains': () => store.inbox.contains('1'),
      'inbox.peekIds': () => store.inbox.peekIds(10),
    };
    // The driver really refuses: a write still answers the refused-write error.
    await expect(
      store.deadLetter({ messageId: 'm', reason: 'r', body: '{}', eventCount: 1 }),
    ).rejects.toBeInstanceOf(StoreRejectedError);
    for (const [name, read] of Object.entries(reads)) {
      const error: unknown = await read().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(AggregatorError);
      expect(error, name).not.toBeInstanceOf(StoreRejectedError);
      expect(error, name).toMatchObject({ code: 'AGG_ERR_INTERNAL', statusCode: 500 });
    }
  });
});

describe('Redis failures', () => {
  // What ioredis raises while a server goes away or a Redis Cluster fails over: each is a queue
  // that cannot take the request now (503, retry), never a server error.
  const failures = [
    new Error('Connection is closed.'),
    // A pipelined command (WAIT after the enqueue) whose connection closed before its reply.
    Object.assign(new Error('Command aborted due to connection close'), { name: 'AbortError' }),
    new Error('CLUSTERDOWN The cluster is down'),
    new Error('MOVED 3999 127.0.0.1:6381'),
    new Error("READONLY You can't write against a read only replica."),
    new Error('Failed to refresh slots cache.'),
  ];
  it.each(failures.map((e) => [e.message, e]))('%s answers 503', (_message, error) => {
    const mapped = toAggregatorError(mapRedisError(error) as FastifyError);
    expect(mapped).toMatchObject({ code: 'AGG_ERR_QUEUE_UNAVAILABLE', statusCode: 503 });
  });

  it('a script error stays a server error', () => {
    const mapped = toAggregatorError(
      mapRedisError(
        new Error('ERR user_script:1: Script attempted to access nonexistent global'),
      ) as FastifyError,
    );
    expect(mapped.statusCode).toBe(500);
  });
});
