/**
 * Request bodies compressed with `Content-Encoding` (RFC 9110 §8.4): `gzip` (and its alias
 * `x-gzip`), `deflate` (zlib format) and `br` are decoded on every route that takes a body, by
 * `@fastify/compress`'s request decompression. It hands Fastify the decoded stream in
 * `preParsing`, so `MAX_BODY_BYTES` limits the decoded size: a 64 MiB body in a 64 KB gzip gets
 * 413, and a decompression bomb stops at the limit. Coding names are case-insensitive; any other
 * coding gets 415 naming the supported ones; bytes that are not valid in their coding get 400.
 *
 * Registered at the root before any route, so every route added later (whatever plugin adds it)
 * decodes too. Answers are not compressed: only request decoding is switched on.
 */
import compress from '@fastify/compress';
import type { FastifyInstance } from 'fastify';
import { AggregatorError } from '../errors.js';

/** The content codings a request body may have, as their registered names. */
export const REQUEST_ENCODINGS = ['gzip', 'deflate', 'br', 'identity'] as const;

/** Methods whose requests carry no body here. */
const BODILESS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Aliases RFC 9110 §8.4.1.3 asks recipients to treat as gzip. */
const ALIASES: Readonly<Record<string, string>> = { 'x-gzip': 'gzip' };

/**
 * The library copies the enumerable own properties of the error it is given onto the stream's
 * error; an Error's message is not enumerable, so it is made so.
 */
function copyable(error: AggregatorError): AggregatorError {
  Object.defineProperty(error, 'message', {
    value: error.message,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return error;
}

export async function registerRequestDecoding(app: FastifyInstance): Promise<void> {
  // Coding names are case-insensitive (RFC 9110 §8.4.1); the library compares them exactly.
  app.addHook('onRequest', async (request) => {
    const coding = request.headers['content-encoding'];
    if (coding === undefined) return;
    const name = coding.trim().toLowerCase();
    request.headers['content-encoding'] = ALIASES[name] ?? name;
  });
  // A request to a route that takes no body is not decoded: a stray Content-Encoding on a GET
  // (a health probe behind a proxy) must not get 415. Runs before the library's own onRoute hook.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (methods.every((m) => BODILESS.has(m.toUpperCase())) && route.decompress === undefined) {
      route.decompress = false;
    }
  });
  await app.register(compress, {
    globalCompression: false,
    globalDecompression: true,
    requestEncodings: [...REQUEST_ENCODINGS],
    onUnsupportedRequestEncoding: (encoding) =>
      new AggregatorError(
        'AGG_ERR_UNSUPPORTED_ENCODING',
        `Content-Encoding "${encoding}" is not supported: send the body as gzip, deflate or br, or uncompressed`,
        [{ field: 'content-encoding', reason: 'must be gzip, deflate, br or identity' }],
      ),
    onInvalidRequestPayload: (encoding, _request, error) =>
      copyable(
        new AggregatorError(
          'AGG_ERR_BAD_ENCODING',
          `The request body is not valid ${encoding} data (${error.message}); check Content-Encoding`,
          [{ field: 'body', reason: `is not valid ${encoding}` }],
        ),
      ),
  });
}
