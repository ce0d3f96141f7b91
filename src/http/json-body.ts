/**
 * The JSON body parser. On top of Fastify's (which guards against prototype poisoning) it refuses
 * bytes that are not UTF-8 and JSON that PostgreSQL could not store (json-limits.ts), keeps the
 * raw bytes of each body (the queue stores them as they arrived, without a byte order mark, so an
 * accepted batch is never serialised again), and it flags bodies whose text contains `\u0000` or a surrogate escape:
 * PostgreSQL cannot store NUL or a lone surrogate in JSONB or text, so such events must be refused
 * at the door, never queued. Only flagged bodies are walked, which keeps the common path cheap.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyBodyParser, FastifyInstance, FastifyRequest } from 'fastify';
import { AggregatorError, type ErrorDetail } from '../errors.js';
import { jsonLimitProblem } from './json-limits.js';
import { assertUtf8Charset, JSON_SUFFIX_MEDIA_TYPE } from './media-type.js';

const SUSPICIOUS_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const flagged = new WeakSet<object>();
const rawBodies = new WeakMap<object, Buffer>();

export function registerJsonBodyParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  const parser: FastifyBodyParser<Buffer> = (request, received, done) => {
    let buffer: Buffer;
    try {
      buffer = utf8BodyBytes(request, received);
    } catch (error) {
      done(error as Error);
      return;
    }
    const text = buffer.toString('utf8');
    void parseJson(request, text, (error, value) => {
      if (error !== null) {
        done(explainParseError(text, error), undefined);
        return;
      }
      const problem = jsonLimitProblem(buffer);
      if (problem !== undefined) {
        done(
          new AggregatorError('AGG_ERR_VALIDATION', `${problem.field}: ${problem.reason}`, [
            problem,
          ]),
          undefined,
        );
        return;
      }
      if (typeof value === 'object' && value !== null) noteBody(value as object, buffer, text);
      done(null, value);
    });
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parser);
  app.addContentTypeParser(JSON_SUFFIX_MEDIA_TYPE, { parseAs: 'buffer' }, parser);
}

/**
 * The bytes of a body whose Content-Type allows UTF-8, checked to be UTF-8, without a byte order
 * mark (allowed before JSON text but not JSON: the stored bytes go without). Throws 415 for
 * another charset, 400 for bytes that are not UTF-8.
 */
export function utf8BodyBytes(request: FastifyRequest, received: Buffer): Buffer {
  assertUtf8Charset(request);
  if (!isUtf8(received)) {
    throw new AggregatorError('AGG_ERR_BAD_JSON', 'The request body is not valid UTF-8');
  }
  return hasByteOrderMark(received) ? received.subarray(3) : received;
}

/**
 * Records the bytes `body` is to be stored as, and whether `text` (what it was parsed from) may
 * hold strings the database cannot store (see assertStorableText).
 */
export function noteBody(body: object, raw: Buffer, text: string): void {
  rawBodies.set(body, raw);
  if (SUSPICIOUS_ESCAPE.test(text)) flagged.add(body);
}

/** Gives `to` (a body built from `from`) the stored bytes `raw` and the marks of `from`. */
export function adoptBody(to: object, from: object, raw: Buffer): void {
  rawBodies.set(to, raw);
  if (flagged.has(from)) flagged.add(to);
}

/** Fastify's parse errors say only "not valid JSON"; the client is told where, or why. */
export function explainParseError(text: string, error: Error): Error {
  if (text.trim() === '') return error;
  try {
    JSON.parse(text);
  } catch (syntax) {
    return new AggregatorError(
      'AGG_ERR_BAD_JSON',
      `The request body is not valid JSON: ${(syntax as Error).message}`,
    );
  }
  // It is JSON, so the parser refused a key that could poison object prototypes.
  return new AggregatorError(
    'AGG_ERR_BAD_JSON',
    'The request body has a "__proto__" or "constructor.prototype" key, which is refused',
  );
}

function hasByteOrderMark(bytes: Buffer): boolean {
  return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
}

/** The bytes a parsed JSON body was parsed from. */
export function rawBodyOf(body: object): Buffer | undefined {
  return rawBodies.get(body);
}

function badString(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain the NUL character (\\u0000)';
  if (LONE_SURROGATE.test(value)) return 'must not contain a lone UTF-16 surrogate';
  return undefined;
}

function walk(value: unknown, path: string, out: ErrorDetail[]): void {
  if (out.length >= 20) return;
  if (typeof value === 'string') {
    const reason = badString(value);
    if (reason !== undefined) out.push({ field: path, reason });
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, `${path}[${i}]`, out));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const keyReason = badString(key);
      if (keyReason !== undefined) {
        out.push({ field: `${path === '' ? 'body' : path} (a key)`, reason: keyReason });
      }
      walk(item, path === '' ? key : `${path}.${key}`, out);
    }
  }
}

/** Throws a 422 naming each string of a flagged body that the database could not store. */
export function assertStorableText(body: object): void {
  if (!flagged.has(body)) return;
  const details: ErrorDetail[] = [];
  walk(body, '', details);
  if (details.length === 0) return;
  throw new AggregatorError(
    'AGG_ERR_VALIDATION',
    details.map((d) => `${d.field} ${d.reason}`).join('; '),
    details,
  );
}
