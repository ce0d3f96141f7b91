/**
 * The `application/x-ndjson` body parser of POST /publish: one event per line (newline-delimited
 * JSON, as log shippers send it), `\n` or `\r\n`, blank lines ignored. Each line is parsed on its
 * own with Fastify's JSON parser (which refuses prototype-poisoning keys), and the lines' bytes
 * are spliced into the envelope `{"events":[line,line,…]}` that is validated and stored, once per
 * request. Errors name the line: `line 3: not valid JSON…`, `line 3: payload.v …`.
 *
 * Registered only in the scope of POST /publish: Elasticsearch bulk routes own their NDJSON.
 */
import type { FastifyBodyParser, FastifyInstance } from 'fastify';
import { AggregatorError } from '../errors.js';
import { explainParseError, noteBody, utf8BodyBytes } from './json-body.js';
import { jsonLimitProblem } from './json-limits.js';
import { fieldInShape, markNdjson } from './publish-shapes.js';

/** The NDJSON media type publish accepts. */
export const NDJSON_MEDIA_TYPE = 'application/x-ndjson';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const PREFIX = Buffer.from('{"events":[');
const COMMA = Buffer.from(',');
const SUFFIX = Buffer.from(']}');

function isBlank(line: Buffer): boolean {
  for (const c of line) {
    if (c !== 0x20 && c !== 0x09 && c !== CARRIAGE_RETURN) return false;
  }
  return true;
}

export function registerNdjsonBodyParser(scope: FastifyInstance): void {
  const parseJson = scope.getDefaultJsonParser('error', 'error');
  const parser: FastifyBodyParser<Buffer> = (request, received, done) => {
    let buffer: Buffer;
    try {
      buffer = utf8BodyBytes(request, received);
    } catch (error) {
      done(error as Error);
      return;
    }
    const events: unknown[] = [];
    const lines: number[] = [];
    const pieces: Buffer[] = [PREFIX];
    let failure: Error | undefined;
    let lineNumber = 0;
    for (let start = 0; start <= buffer.length && failure === undefined;) {
      let end = buffer.indexOf(NEWLINE, start);
      if (end === -1) end = buffer.length;
      lineNumber++;
      const line = buffer.subarray(start, buffer[end - 1] === CARRIAGE_RETURN ? end - 1 : end);
      start = end + 1;
      if (isBlank(line)) continue;
      const text = line.toString('utf8');
      const at = lineNumber;
      void parseJson(request, text, (error, value) => {
        if (error !== null) {
          const explained = explainParseError(text, error);
          failure = new AggregatorError('AGG_ERR_BAD_JSON', `line ${at}: ${explained.message}`);
          return;
        }
        events.push(value);
        lines.push(at);
        if (pieces.length > 1) pieces.push(COMMA);
        pieces.push(line);
      });
    }
    if (failure !== undefined) {
      done(failure);
      return;
    }
    pieces.push(SUFFIX);
    const envelopeBytes = Buffer.concat(pieces);
    const envelope = { events };
    markNdjson(envelope, lines);
    const problem = jsonLimitProblem(envelopeBytes);
    if (problem !== undefined) {
      const field = fieldInShape(problem.field, { envelope, shape: 'ndjson', lines });
      done(
        new AggregatorError('AGG_ERR_VALIDATION', `${field}: ${problem.reason}`, [
          { field, reason: problem.reason },
        ]),
      );
      return;
    }
    noteBody(envelope, envelopeBytes, buffer.toString('utf8'));
    done(null, envelope);
  };
  scope.addContentTypeParser(NDJSON_MEDIA_TYPE, { parseAs: 'buffer' }, parser);
}
