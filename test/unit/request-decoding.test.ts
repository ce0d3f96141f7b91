/**
 * Request decoding applies app-wide: a route added later by an encapsulated plugin, with its own
 * content-type parser (as the OTLP, Elasticsearch and Loki routes are), gets decoded bodies and
 * the same refusals as /publish, with the body limit on the decoded size.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import Fastify, { type FastifyError } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendError } from '../../src/http/errors-json.js';
import { registerRequestDecoding } from '../../src/http/request-decoding.js';

describe('request decoding', () => {
  const app = Fastify({ bodyLimit: 1024 });
  beforeAll(async () => {
    app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply));
    await registerRequestDecoding(app);
    await app.register(
      async (scope) => {
        scope.addContentTypeParser(
          'application/x-protobuf',
          { parseAs: 'buffer' },
          (_request, body, done) => done(null, body),
        );
        scope.post('/v1/logs', async (request) => ({ text: (request.body as Buffer).toString() }));
        scope.get('/probe', async () => ({ ok: true }));
      },
      { prefix: '' },
    );
    await app.ready();
  });
  afterAll(() => app.close());

  const post = (payload: Buffer | string, coding?: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/logs',
      payload,
      headers: {
        'content-type': 'application/x-protobuf',
        ...(coding === undefined ? {} : { 'content-encoding': coding }),
      },
    });

  it.each([
    ['gzip', gzipSync],
    ['GZIP', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
    ['Br', brotliCompressSync],
  ] as const)('decodes %s on a route added later in its own plugin', async (coding, encode) => {
    const reply = await post(encode(Buffer.from('hello')), coding);
    expect(reply.statusCode, reply.body).toBe(200);
    expect(reply.json()).toEqual({ text: 'hello' });
  });

  it('limits the decoded size, not the sent one', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024, 'x'));
    expect(bomb.length).toBeLessThan(1024);
    const reply = await post(bomb, 'gzip');
    expect(reply.statusCode).toBe(413);
    expect(reply.json()).toMatchObject({ code: 'AGG_ERR_BODY_TOO_LARGE' });
  });

  it('refuses an unknown coding with 415 and bytes invalid in theirs with 400', async () => {
    const unknown = await post('hello', 'zstd');
    expect(unknown.statusCode).toBe(415);
    expect(unknown.json()).toMatchObject({
      code: 'AGG_ERR_UNSUPPORTED_ENCODING',
      message: expect.stringContaining('gzip, deflate or br') as string,
    });
    const invalid = await post('hello', 'gzip');
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json()).toMatchObject({
      code: 'AGG_ERR_BAD_ENCODING',
      message: expect.stringContaining('not valid gzip') as string,
    });
  });

  it('leaves a request without a body alone, whatever its Content-Encoding says', async () => {
    for (const coding of ['gzip', 'zstd']) {
      const reply = await app.inject({
        method: 'GET',
        url: '/probe',
        headers: { 'content-encoding': coding },
      });
      expect(reply.statusCode, coding).toBe(200);
      expect(reply.json()).toEqual({ ok: true });
    }
  });
});
