/**
 * The media types request bodies may have, parsed as RFC 9110 says (case-insensitive type and
 * parameter names, quoted parameter values, with the `content-type` library): JSON as
 * `application/json` or any `application/<something>+json` (RFC 6839 structured syntax
 * suffix), each with no charset or `charset=utf-8`. JSON text exchanged between systems must be
 * UTF-8 (RFC 8259 §8.1), so another charset is refused with its own 415 rather than read wrongly.
 */
import type { FastifyRequest } from 'fastify';
import { parse } from 'content-type';
import { AggregatorError } from '../errors.js';

/**
 * What Fastify's parser list is matched against: its own rendering of the header, lower-case
 * type, then `; name="value"` parameters. Matches `application/vnd.api+json` with or without them.
 */
export const JSON_SUFFIX_MEDIA_TYPE = /^application\/[\w!#$%&'*.^`|~-]+\+json(?:;|$)/;

/** Charset names that mean UTF-8 (lower case); `utf8` is not registered but common. */
const UTF8_NAMES = new Set(['utf-8', 'utf8']);

/**
 * Throws a 415 when the request's Content-Type names a charset other than UTF-8; bodies are
 * read as UTF-8 bytes only.
 */
export function assertUtf8Charset(request: FastifyRequest): void {
  const header = request.headers['content-type'];
  if (header === undefined) return;
  const charset = parse(header).parameters.charset;
  if (charset === undefined || UTF8_NAMES.has(charset.toLowerCase())) return;
  throw new AggregatorError(
    'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    `The charset "${charset}" is not supported: send the body as UTF-8 (charset=utf-8, or no charset)`,
    [{ field: 'content-type', reason: `charset must be utf-8, not "${charset}"` }],
  );
}
