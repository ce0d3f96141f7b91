/**
 * Bad input, case by case: each request gets its defined status and an error body that names the
 * problem; the queue, the store, the counters and the dead letters are untouched; and the next
 * good request is accepted and stored. Then a few odd but valid inputs, with what is stored.
 * Runs on every backend combination: what the database would refuse must be refused at the door
 * whichever database it is.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { event, request, waitForDrain } from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

interface Case {
  readonly name: string;
  /** A value is sent as JSON; a string or Buffer as the exact bytes. */
  readonly body: unknown;
  readonly contentType?: string | null;
  /** More request headers, e.g. Content-Encoding. */
  readonly headers?: Record<string, string>;
  readonly status: 400 | 413 | 415 | 422;
  readonly code: string;
  /** Text the message or a detail must contain: what names the problem. */
  readonly names: string;
}

const good = (extra: Record<string, unknown> = {}) => ({ ...event('bad-input', 1), ...extra });
const withEvent = (extra: Record<string, unknown>) => ({ events: [good(extra)] });
const raw = (text: string) => text;
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const eventJson = (payloadJson: string) =>
  `{"events":[{"topic":"bad-input","event_id":"1","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":${payloadJson}}]}`;

const CASES: Case[] = [
  // Not JSON, or not JSON we take.
  {
    name: 'malformed JSON',
    body: raw('{"events": [}'),
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: 'not valid JSON',
  },
  {
    name: 'truncated JSON',
    body: raw('{"events": [{"topic": "a"'),
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: 'not valid JSON',
  },
  { name: 'empty body', body: raw(''), status: 400, code: 'AGG_ERR_BAD_JSON', names: 'empty' },
  {
    name: 'invalid UTF-8 bytes',
    body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: 'UTF-8',
  },
  {
    name: 'a __proto__ key',
    body: raw(eventJson('{"__proto__":{"admin":true}}')),
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: '__proto__',
  },
  {
    name: 'text/plain content type',
    body: raw(JSON.stringify(withEvent({}))),
    contentType: 'text/plain',
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'application/json',
  },
  {
    name: 'form content type',
    body: raw('events=1'),
    contentType: 'application/x-www-form-urlencoded',
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'application/json',
  },
  {
    name: 'no content type',
    body: raw(JSON.stringify(withEvent({}))),
    contentType: null,
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'application/json',
  },
  {
    name: 'a charset other than UTF-8',
    body: raw(JSON.stringify(withEvent({}))),
    contentType: 'application/json; charset=iso-8859-1',
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'charset "iso-8859-1" is not supported',
  },
  {
    name: 'a quoted UTF-16 charset on a +json type',
    body: raw(JSON.stringify(withEvent({}))),
    contentType: 'application/vnd.api+json; charset="UTF-16"',
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'charset must be utf-8',
  },
  {
    name: 'a JSON-looking type outside application/ (text/json)',
    body: raw(JSON.stringify(withEvent({}))),
    contentType: 'text/json',
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'application/json',
  },
  // The other shapes of a publish: errors name fields as they were sent.
  {
    name: 'a bad event in a bare array',
    body: [good(), good({ event_id: '2' }), good({ event_id: '3', topic: '' })],
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: '[2].topic must not be empty',
  },
  {
    name: 'a bare event without a topic',
    body: { event_id: '1', timestamp: '2024-05-01T12:00:00Z', source: 's' },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'topic is required',
  },
  {
    name: 'a bare event with a NUL in its payload',
    body: good({ payload: { msg: 'a\u0000b' } }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: '"field":"payload.msg"',
  },
  {
    name: 'a bare array with a number numeric cannot hold',
    body: raw(
      `[${JSON.stringify(good())},{"topic":"t","event_id":"2","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":{"v":0e-16384}}]`,
    ),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: '[1].payload.v',
  },
  {
    name: 'too many events in a bare array',
    body: Array.from({ length: 1001 }, (_, i) => event('bad-input', i)),
    status: 413,
    code: 'AGG_ERR_TOO_MANY_EVENTS',
    names: 'at most 1000 events',
  },
  {
    name: 'NDJSON: a bad event on line 3, after a blank line',
    body: raw(
      `${JSON.stringify(good())}\n\n${JSON.stringify(good({ event_id: '2', topic: undefined }))}\n`,
    ),
    contentType: 'application/x-ndjson',
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'line 3: topic is required',
  },
  {
    name: 'NDJSON: a line that is not JSON',
    body: raw(`${JSON.stringify(good())}\r\n{"topic": \r\n`),
    contentType: 'application/x-ndjson',
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: 'line 2: ',
  },
  {
    name: 'NDJSON: two events on one line',
    body: raw(`${JSON.stringify(good())},${JSON.stringify(good({ event_id: '2' }))}\n`),
    contentType: 'application/x-ndjson',
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: 'line 1: ',
  },
  {
    name: 'NDJSON: a line that is an array',
    body: raw(`${JSON.stringify(good())}\n[1]\n`),
    contentType: 'application/x-ndjson',
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'line 2 must be of type object',
  },
  {
    name: 'NDJSON: a number numeric cannot hold',
    body: raw(
      `{"topic":"t","event_id":"2","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":{"v":[-0e-16384]}}`,
    ),
    contentType: 'application/x-ndjson',
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'line 1: payload.v[0]',
  },
  {
    name: 'NDJSON: a lone surrogate',
    body: raw(
      `${JSON.stringify(good())}\n{"topic":"t","event_id":"2","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":{"m":"\\udc00"}}`,
    ),
    contentType: 'application/x-ndjson',
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'line 2: payload.m must not contain a lone UTF-16 surrogate',
  },
  {
    name: 'NDJSON: a __proto__ key',
    body: raw(
      `{"topic":"t","event_id":"2","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":{"__proto__":{"x":1}}}`,
    ),
    contentType: 'application/x-ndjson',
    status: 400,
    code: 'AGG_ERR_BAD_JSON',
    names: 'line 1: ',
  },
  {
    name: 'NDJSON: blank lines only',
    body: raw('\n  \r\n\n'),
    contentType: 'application/x-ndjson',
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'body must contain at least 1 item',
  },
  {
    name: 'NDJSON: in another charset',
    body: raw(JSON.stringify(good())),
    contentType: 'application/x-ndjson; charset=latin1',
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_MEDIA_TYPE',
    names: 'latin1',
  },
  // Content codings.
  {
    name: 'a plain body labelled gzip',
    body: raw(JSON.stringify(withEvent({}))),
    headers: { 'content-encoding': 'gzip' },
    status: 400,
    code: 'AGG_ERR_BAD_ENCODING',
    names: 'not valid gzip',
  },
  {
    name: 'a truncated gzip body',
    body: gzipSync(JSON.stringify(withEvent({}))).subarray(0, 30),
    headers: { 'content-encoding': 'gzip' },
    status: 400,
    code: 'AGG_ERR_BAD_ENCODING',
    names: 'not valid gzip',
  },
  {
    name: 'a gzip body labelled br',
    body: gzipSync(JSON.stringify(withEvent({}))),
    headers: { 'content-encoding': 'br' },
    status: 400,
    code: 'AGG_ERR_BAD_ENCODING',
    names: 'not valid br',
  },
  {
    name: 'an unsupported coding (compress)',
    body: raw(JSON.stringify(withEvent({}))),
    headers: { 'content-encoding': 'compress' },
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_ENCODING',
    names: 'send the body as gzip, deflate or br',
  },
  {
    name: 'stacked codings (gzip, br)',
    body: brotliCompressSync(gzipSync(JSON.stringify(withEvent({})))),
    headers: { 'content-encoding': 'gzip, br' },
    status: 415,
    code: 'AGG_ERR_UNSUPPORTED_ENCODING',
    names: 'gzip, br',
  },
  {
    name: '64 MiB decoded from a small gzip body',
    body: gzipSync(
      Buffer.concat([
        Buffer.from(
          '{"events":[{"topic":"t","event_id":"1","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":{"blob":"',
        ),
        Buffer.alloc(64 * 1024 * 1024, 'x'),
        Buffer.from('"}}]}'),
      ]),
    ),
    headers: { 'content-encoding': 'gzip' },
    status: 413,
    code: 'AGG_ERR_BODY_TOO_LARGE',
    names: 'too large',
  },
  {
    name: 'a gzip body with a bad event',
    body: gzipSync(JSON.stringify(withEvent({ timestamp: 'yesterday' }))),
    headers: { 'content-encoding': 'GZIP' },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp',
  },
  // Wrong shape.
  {
    name: 'body is a string',
    body: raw('"events"'),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'body must be of type object',
  },
  {
    name: 'body is an empty array',
    body: [],
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'body must contain at least 1 item',
  },
  {
    name: 'body is null',
    body: raw('null'),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'body must be of type object',
  },
  {
    name: 'events missing',
    body: { invalid: 'data' },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events is required',
  },
  {
    name: 'events not an array',
    body: { events: 'nope' },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events must be of type array',
  },
  {
    name: 'events empty',
    body: { events: [] },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events must contain at least 1 item',
  },
  {
    name: 'an event is a number',
    body: { events: [good(), 5] },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[1] must be of type object',
  },
  {
    name: 'an event is null',
    body: { events: [null] },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0] must be of type object',
  },
  {
    name: 'an event is an array',
    body: { events: [[good()]] },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0] must be of type object',
  },
  {
    name: 'topic missing',
    body: { events: [{ event_id: '1', timestamp: '2024-05-01T12:00:00Z', source: 's' }] },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic is required',
  },
  {
    name: 'several fields missing',
    body: { events: [{ topic: 't' }] },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp is required',
  },
  // Wrong types.
  {
    name: 'numeric event_id',
    body: withEvent({ event_id: 7 }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].event_id must be of type string',
  },
  {
    name: 'numeric topic',
    body: withEvent({ topic: 42 }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic must be of type string',
  },
  {
    name: 'boolean source',
    body: withEvent({ source: true }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].source must be of type string',
  },
  {
    name: 'payload is an array',
    body: withEvent({ payload: [1, 2] }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload must be of type object',
  },
  {
    name: 'payload is a string',
    body: withEvent({ payload: 'text' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload must be of type object',
  },
  // Bad strings.
  {
    name: 'empty topic',
    body: withEvent({ topic: '' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic must not be empty',
  },
  {
    name: 'whitespace topic',
    body: withEvent({ topic: ' \t ' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic must not be blank',
  },
  {
    name: 'over-long event_id',
    body: withEvent({ event_id: 'x'.repeat(256) }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].event_id must be at most 255 characters',
  },
  {
    name: 'control character in source',
    body: withEvent({ source: 'a\nb' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].source must not contain control characters (U+000A at index 1)',
  },
  {
    name: 'a C1 control (U+0085) in the topic',
    body: withEvent({ topic: 'orders\u0085' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic must not contain control characters (U+0085 at index 6)',
  },
  {
    name: 'a C1 control (U+009B, CSI) in the event_id',
    body: withEvent({ event_id: '\u009b31mred' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].event_id must not contain control characters (U+009B',
  },
  {
    name: 'a zero-width space in the source',
    body: withEvent({ source: 'api\u200b' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names:
      'events[0].source must not contain invisible formatting characters or line separators (U+200B',
  },
  {
    name: 'a byte order mark inside the topic',
    body: withEvent({ topic: '\ufefforders' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names:
      'events[0].topic must not contain invisible formatting characters or line separators (U+FEFF',
  },
  {
    name: 'a right-to-left override in the topic',
    body: withEvent({ topic: 'abc\u202edcba' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: '(U+202E',
  },
  {
    name: 'a topic of Unicode white space only',
    body: withEvent({ topic: '\u00a0\u3000\u2003' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic must not be blank (only white space)',
  },
  {
    name: 'a topic of joiners only (U+200D U+200C)',
    body: withEvent({ topic: '\u200d\u200c' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names:
      'events[0].topic must not be blank (only white space and invisible characters, such as U+200D at index 0)',
  },
  {
    name: 'an event_id of a joiner between spaces',
    body: withEvent({ event_id: ' \u200c ' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].event_id must not be blank',
  },
  {
    name: 'a source of Hangul fillers and a variation selector',
    body: withEvent({ source: '\u3164\ufe0f' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].source must not be blank',
  },
  {
    name: '\\u0000 in a payload string',
    body: withEvent({ payload: { msg: 'a\u0000b' } }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.msg must not contain the NUL character',
  },
  {
    name: '\\u0000 in a payload key',
    body: withEvent({ payload: { 'a\u0000b': 1 } }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload (a key) must not contain the NUL character',
  },
  {
    name: '\\u0000 in the topic',
    body: withEvent({ topic: 'a\u0000b' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].topic',
  },
  {
    name: 'a lone surrogate',
    body: raw(eventJson('{"msg":"\\ud800x"}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.msg must not contain a lone UTF-16 surrogate',
  },
  // Timestamps.
  {
    name: 'timestamp without a date',
    body: withEvent({ timestamp: '12:00:00' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp must be an ISO 8601 date and time',
  },
  {
    name: 'date without a time',
    body: withEvent({ timestamp: '2024-05-01' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp',
  },
  {
    name: 'timestamp in year 10000',
    body: withEvent({ timestamp: '10000-01-01T00:00:00Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp',
  },
  {
    name: 'timestamp rounding into year 10000',
    body: withEvent({ timestamp: '9999-12-31T23:59:59.9999999Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp',
  },
  {
    name: 'timestamp in year 0',
    body: withEvent({ timestamp: '0000-06-01T00:00:00Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp',
  },
  {
    name: '31 February',
    body: withEvent({ timestamp: '2024-02-31T00:00:00Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp 2024-02-31 is not a date',
  },
  {
    name: 'a leap second',
    body: withEvent({ timestamp: '2016-12-31T23:59:60Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp is a leap second (23:59:60), which is not supported',
  },
  {
    name: 'a decimal comma',
    body: withEvent({ timestamp: '2024-05-01T12:00:00,5Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp writes the fraction of a second with a decimal comma',
  },
  {
    name: 'hour 24',
    body: withEvent({ timestamp: '2024-05-01T24:00:00Z' }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp 24:00:00 is not a time of day',
  },
  {
    name: 'epoch seconds as timestamp',
    body: withEvent({ timestamp: 1714564800 }),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].timestamp must be of type string',
  },
  // What JSON allows and PostgreSQL does not.
  {
    name: 'payload nested 10,000 deep',
    body: raw(eventJson(`{"deep":${nested(10_000)}}`)),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'nested more than 64 levels',
  },
  {
    name: 'number beyond a float (1e200000)',
    body: raw(eventJson('{"n":1e200000}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'the number 1e200000 is too large',
  },
  {
    name: 'number below a float (1e-400)',
    body: raw(eventJson('{"n":1e-400}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'too small',
  },
  {
    name: 'a 400-digit integer',
    body: raw(eventJson(`{"n":${'9'.repeat(400)}}`)),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'too large',
  },
  // Numbers PostgreSQL's numeric cannot hold, or would print far larger than sent.
  {
    name: 'an exponent below -16,383 (0e-16384)',
    body: raw(eventJson('{"v":0e-16384}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.v: the number 0e-16384 has an exponent beyond ±16383',
  },
  {
    name: 'a scale above 16,383 with an exponent (0.0e-16383)',
    body: raw(eventJson('{"v":0.0e-16383}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.v: the number 0.0e-16383 has 16384 digits after the decimal point',
  },
  {
    name: 'a negative zero with an exponent below -16,383, in an array',
    body: raw(eventJson('{"list":[1,[2,-0e-16384]]}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.list[1][1]',
  },
  {
    name: 'a scale above 16,383 written out (1.000…)',
    body: raw(eventJson(`{"v":1.${'0'.repeat(16_384)}}`)),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'at most 16383 can be stored',
  },
  {
    name: 'an 8-byte number printed in 16,385 characters (0e-16383)',
    body: raw(eventJson('{"v":0e-16383}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'would be stored as 16385 characters',
  },
  {
    name: 'an exponent PostgreSQL overflows on (0e1073741824)',
    body: raw(eventJson('{"v":0e1073741824}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.v',
  },
  {
    name: 'an exponent on a non-zero mantissa below numeric (1.5e-16382)',
    body: raw(eventJson('{"v":1.5e-16382}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'too small',
  },
  {
    name: 'integer digits beyond numeric (1E+131072)',
    body: raw(eventJson('{"v":1E+131072}')),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[0].payload.v',
  },
  {
    name: 'small numbers that together print 40 times larger',
    body: raw(eventJson(`{"v":[${Array.from({ length: 200 }, () => '1e-300').join(',')}]}`)),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'stored',
  },
  {
    name: 'a refused number beside valid events',
    body: raw(
      `{"events":[${JSON.stringify(good({ event_id: 'n1' }))},{"topic":"bad-input","event_id":"n2","timestamp":"2024-05-01T12:00:00Z","source":"s","payload":{"v":0e-16384}}]}`,
    ),
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[1].payload.v',
  },
  // Size limits.
  {
    name: 'too many events',
    body: { events: Array.from({ length: 1001 }, (_, i) => event('bad-input', i)) },
    status: 413,
    code: 'AGG_ERR_TOO_MANY_EVENTS',
    names: 'at most 1000 events',
  },
  {
    name: 'body over MAX_BODY_BYTES',
    body: withEvent({ payload: { blob: 'x'.repeat(6 * 1024 * 1024) } }),
    status: 413,
    code: 'AGG_ERR_BODY_TOO_LARGE',
    names: 'too large',
  },
  // One bad event refuses the whole batch, so none of its good events are stored.
  {
    name: 'one bad event among good ones',
    body: {
      events: [good(), good({ event_id: '2' }), good({ event_id: '3', timestamp: 'yesterday' })],
    },
    status: 422,
    code: 'AGG_ERR_VALIDATION',
    names: 'events[2].timestamp',
  },
];

interface Snapshot {
  counters: { received: number; uniqueProcessed: number; duplicateDropped: number };
  events: number;
  queue: { messages: number; events: number };
  deadLetters: number;
}

async function snapshot(svc: TestService): Promise<Snapshot> {
  const { store, queue } = svc.service;
  const c = await store.counters();
  return {
    counters: {
      received: c.received,
      uniqueProcessed: c.uniqueProcessed,
      duplicateDropped: c.duplicateDropped,
    },
    events: await store.countEvents(),
    queue: await queue.depth(),
    deadLetters: await store.deadLetterCount(),
  };
}

async function send(base: string, c: Pick<Case, 'body' | 'contentType' | 'headers'>, query = '') {
  const body =
    typeof c.body === 'string' || Buffer.isBuffer(c.body) ? c.body : JSON.stringify(c.body);
  const headers: Record<string, string> = { ...c.headers };
  if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
  const response = await fetch(`${base}/publish${query}`, { method: 'POST', body, headers });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // stays empty: the assertions below then fail with the text
  }
  return { status: response.status, body: parsed, text };
}

describe('bad input table', () => {
  it('has at least 30 refused cases, each named once', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });
});

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `bad input on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      let accepted = 0;
      beforeAll(async () => {
        svc = await startTestService(backend.name);
      });
      afterAll(async () => {
        await svc?.close();
      });

      /** Publishes one fresh event and waits until it is stored. */
      async function goodRequestWorks(): Promise<void> {
        const reply = await request(`${svc.url}/publish`, {
          method: 'POST',
          body: { events: [event('good', randomUUID())] },
        });
        expect(reply.status).toBe(200);
        accepted++;
        const s = await waitForDrain(svc.url, accepted, 20_000);
        expect(s.unique_processed).toBe(accepted);
      }

      it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
        for (const atomic of ['', '?atomic=true']) {
          const before = await snapshot(svc);
          const reply = await send(svc.url, c, atomic);
          expect(reply.status, reply.text).toBe(c.status);
          expect(reply.body.code, reply.text).toBe(c.code);
          expect(reply.body.statusCode).toBe(c.status);
          const described = `${String(reply.body.message)} ${JSON.stringify(reply.body.details)}`;
          expect(described).toContain(c.names);
          // A worker could still be applying something refused late: give it the chance to show.
          await sleep(atomic === '' ? 50 : 0);
          expect(await snapshot(svc)).toEqual(before);
        }
        await goodRequestWorks();
      });

      it('odd but valid input is stored as sent', async () => {
        const topic = `ünïcødé/日志 ${randomUUID().slice(0, 4)} 🚀`;
        const bom = Buffer.concat([
          Buffer.from([0xef, 0xbb, 0xbf]),
          Buffer.from(JSON.stringify({ events: [event(topic, 'bom')] })),
        ]);
        const cases: {
          body: string | Buffer;
          id: string;
          contentType?: string;
          headers?: Record<string, string>;
          check?: (e: StoredRow) => void;
        }[] = [
          // Joiners are part of words and emoji: a family emoji, a Persian word, in the source.
          ...['👨\u200d👩\u200d👧', 'می\u200cخواهم'].map((source, i) => ({
            body: JSON.stringify({ events: [event(topic, `joiner-${i}`, { source })] }),
            id: `joiner-${i}`,
            check: (e: StoredRow) => expect(e.source).toBe(source),
          })),
          // Compressed bodies, coding names in any case.
          ...(
            [
              ['gzip', gzipSync],
              ['x-gzip', gzipSync],
              ['GZip', gzipSync],
              ['deflate', deflateSync],
              [' br ', brotliCompressSync],
              ['identity', (b: Buffer) => b],
            ] as const
          ).map(([coding, encode], i) => ({
            body: encode(
              Buffer.from(
                eventJson(
                  '{"exact":12345678901234567890.5,"coding":' + JSON.stringify(coding) + '}',
                )
                  .replace('"bad-input"', JSON.stringify(topic))
                  .replace('"event_id":"1"', `"event_id":"coded-${i}"`),
              ),
            ),
            id: `coded-${i}`,
            headers: { 'content-encoding': coding },
            check: (e: StoredRow) => expect(e.payload.coding).toBe(coding),
          })),
          // Media types as RFC 9110 allows them: any case, parameters, quoted values, +json.
          ...[
            'application/vnd.api+json; charset=utf-8',
            'Application/JSON; Charset="UTF-8"',
            'application/merge-patch+json',
            'application/json;charset=utf8; version=2',
          ].map((contentType, i) => ({
            body: JSON.stringify({ events: [event(topic, `media-${i}`)] }),
            id: `media-${i}`,
            contentType,
          })),
          // A byte order mark before the JSON text is allowed and not stored.
          { body: bom, id: 'bom' },
          // Duplicate keys: the last one wins, in validation and in storage alike.
          {
            body: `{"events":[{"topic":${JSON.stringify(topic)},"event_id":"dup-keys","timestamp":"not a date","timestamp":"2024-05-01T12:00:00Z","source":"first","source":"last"}]}`,
            id: 'dup-keys',
            check: (e) => expect(e.source).toBe('last'),
          },
          // Fields the API does not know are ignored: nothing of them reaches the stored event.
          {
            body: JSON.stringify({
              events: [{ ...event(topic, 'extra'), severity: 'high' }],
              meta: 1,
            }),
            id: 'extra',
            check: (e) => expect(e.payload).toEqual({ n: 'extra' }),
          },
          // Numbers at a float's edges, and nesting within the limit, are kept exactly; an
          // exponent that prints within 400 characters is fine.
          {
            body: eventJson(
              '{"big":1.7976931348623157e308,"small":5e-324,"zero":-0e-390,"ten":100e-1,"deep":' +
                nested(60) +
                '}',
            )
              .replace('"bad-input"', JSON.stringify(topic))
              .replace('"event_id":"1"', '"event_id":"edges"'),
            id: 'edges',
            check: (e) =>
              expect(e.payload).toMatchObject({
                big: 1.7976931348623157e308,
                small: 5e-324,
                zero: 0,
                ten: 10,
              }),
          },
          // Surrogate pairs written as escapes are one character, not lone surrogates.
          {
            body: eventJson('{"emoji":"\\ud83d\\ude80"}')
              .replace('"bad-input"', JSON.stringify(topic))
              .replace('"event_id":"1"', '"event_id":"pair"'),
            id: 'pair',
            check: (e) => expect(e.payload).toEqual({ emoji: '🚀' }),
          },
        ];
        for (const c of cases) {
          const reply = await send(svc.url, {
            body: c.body,
            contentType: c.contentType,
            headers: c.headers,
          });
          expect(reply.status, `${c.id}: ${reply.text}`).toBe(200);
          accepted++;
        }
        await waitForDrain(svc.url, accepted, 20_000);
        const listed = await request<StoredRow[]>(
          `${svc.url}/events?topic=${encodeURIComponent(topic)}&limit=100`,
        );
        expect(listed.body.map((e) => e.event_id).sort()).toEqual(cases.map((c) => c.id).sort());
        for (const c of cases) {
          const stored = listed.body.find((e) => e.event_id === c.id);
          expect(stored?.topic).toBe(topic);
          if (stored !== undefined) c.check?.(stored);
        }
        expect(await svc.service.store.deadLetterCount()).toBe(0);
      });
    },
  );
}

interface StoredRow {
  topic: string;
  event_id: string;
  source: string;
  payload: Record<string, unknown>;
}
