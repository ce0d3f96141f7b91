/**
 * Malformed input for every shipper decoder: random bytes, mutated valid messages, random JSON in
 * and out of the expected shapes. A decoder may refuse the request (a 400 AggregatorError) or
 * refuse single records, but never throw anything else, and every event it lets through is JSON
 * the queue can carry. Then the same kinds of bodies through the real server: never a 500.
 */
import { randomUUID } from 'node:crypto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  SimpleLogRecordProcessor,
} from '@opentelemetry/sdk-logs';
import fc from 'fast-check';
import snappy from 'snappyjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AggregatorError } from '../../src/errors.js';
import { decodeBulk } from '../../src/ingest/es-bulk.js';
import { checkEvent, type MappedEvent } from '../../src/ingest/event-validation.js';
import { decodeLokiJson, decodeLokiProtobuf } from '../../src/ingest/loki-push.js';
import { decodeOtlpJson, decodeOtlpProtobuf, mapOtlpLogs } from '../../src/ingest/otlp-logs.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const RUNS = 300;

/** Runs a decoder: it may refuse with a 400 AggregatorError, anything else fails the test. */
function decodes(decode: () => readonly object[]): void {
  let records;
  try {
    records = decode();
  } catch (error) {
    if (error instanceof AggregatorError && error.statusCode === 400) return;
    throw error;
  }
  for (const record of records) {
    const event = (record as { event?: MappedEvent }).event;
    if (event === undefined) continue;
    const checked = checkEvent(event);
    if (checked.ok) expect(() => JSON.parse(checked.json) as unknown).not.toThrow();
  }
}

async function validOtlpRequest(): Promise<Uint8Array> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'fuzz', 'host.name': 'h' }),
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  const logger = provider.getLogger('fuzz');
  logger.emit({ body: { a: [1, 2.5, 'x', true, null], b: { c: 'd' } }, attributes: { n: 3 } });
  logger.emit({ body: 'plain', severityText: 'WARN' });
  await provider.forceFlush();
  const bytes = ProtobufLogsSerializer.serializeRequest([...memory.getFinishedLogRecords()]);
  await provider.shutdown();
  if (bytes === undefined) throw new Error('the SDK serialised nothing');
  return bytes;
}

/** A byte array with some bytes replaced, some cut off, some inserted. */
const mutated = (valid: Uint8Array) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(valid.length), fc.integer({ min: 0, max: 255 })), {
        maxLength: 8,
      }),
      fc.nat(valid.length),
    )
    .map(([changes, cut]) => {
      const bytes = Uint8Array.from(valid);
      for (const [at, value] of changes) if (at < bytes.length) bytes[at] = value;
      return bytes.subarray(0, Math.max(cut, valid.length - 4));
    });

const otlpJsonShaped = fc.record({
  resourceLogs: fc.array(
    fc.record({
      resource: fc.record({
        attributes: fc.array(fc.record({ key: fc.string(), value: fc.anything() })),
      }),
      scopeLogs: fc.array(
        fc.record({
          scope: fc.anything(),
          logRecords: fc.array(
            fc.record(
              {
                timeUnixNano: fc.oneof(fc.string(), fc.bigInt().map(String), fc.double()),
                observedTimeUnixNano: fc.anything(),
                body: fc.oneof(
                  fc.record({ stringValue: fc.string() }),
                  fc.record({ intValue: fc.string() }),
                  fc.record({ kvlistValue: fc.anything() }),
                  fc.anything(),
                ),
                attributes: fc.anything(),
                traceId: fc.oneof(
                  fc.string({ unit: fc.constantFrom(...'0123456789abcdef') }),
                  fc.string(),
                ),
                severityNumber: fc.anything(),
              },
              { requiredKeys: [] },
            ),
          ),
        }),
      ),
    }),
  ),
});

const bulkLine = fc.oneof(
  fc.constant('{"create":{"_index":"fuzz"}}'),
  fc.constant('{"index":{"_index":"fuzz","_id":"x"}}'),
  fc.constant('{"delete":{"_index":"fuzz","_id":"x"}}'),
  fc.constant('{"@timestamp":"2024-05-01T12:00:00Z","m":1}'),
  fc.json(),
  fc.string(),
);

const lokiJsonShaped = fc.record({
  streams: fc.array(
    fc.record({
      stream: fc.oneof(fc.dictionary(fc.string(), fc.string()), fc.anything()),
      values: fc.array(
        fc.oneof(
          fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 64n }).map(String), fc.string()),
          fc.tuple(fc.string(), fc.string(), fc.dictionary(fc.string(), fc.string())),
          fc.anything(),
        ),
      ),
    }),
  ),
});

describe('shipper decoders under malformed input', () => {
  it('OTLP protobuf: random bytes and mutated SDK requests', async () => {
    const valid = await validOtlpRequest();
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(valid)), (bytes) => {
        decodes(() => mapOtlpLogs(decodeOtlpProtobuf(bytes)));
      }),
      { numRuns: RUNS },
    );
  });

  it('OTLP JSON: random JSON and request-shaped values of the wrong types', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          otlpJsonShaped.map((v) => JSON.stringify(v) ?? ''),
        ),
        (text) => {
          decodes(() => mapOtlpLogs(decodeOtlpJson(text)));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('Elasticsearch bulk: random lines among valid ones', () => {
    fc.assert(
      fc.property(fc.array(bulkLine, { maxLength: 12 }), fc.option(fc.string()), (lines, index) => {
        decodes(() => decodeBulk(lines.join('\n'), index ?? undefined));
      }),
      { numRuns: RUNS },
    );
  });

  it('Loki: random and snappy-wrapped random bytes, random and push-shaped JSON', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        fc.oneof(
          fc.json(),
          lokiJsonShaped.map((v) => JSON.stringify(v) ?? ''),
        ),
        (bytes, wrap, text) => {
          decodes(() => decodeLokiProtobuf(wrap ? snappy.compress(bytes) : bytes, 1 << 20));
          decodes(() => decodeLokiJson(text));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('shipper routes under malformed input', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('pglite-inbox');
  });
  afterAll(async () => {
    await svc?.close();
  });

  it('never answer 500', async () => {
    const valid = await validOtlpRequest();
    const routes = [
      ['/v1/logs', 'application/x-protobuf'],
      ['/v1/logs', 'application/json'],
      ['/es/_bulk', 'application/x-ndjson'],
      [`/es/${randomUUID()}/_bulk`, 'application/vnd.elasticsearch+x-ndjson; compatible-with=8'],
      ['/loki/api/v1/push', 'application/x-protobuf'],
      ['/loki/api/v1/push', 'application/json'],
    ] as const;
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      mutated(valid),
      fc.json().map((t) => Buffer.from(t)),
      fc.array(bulkLine, { maxLength: 6 }).map((l) => Buffer.from(l.join('\n'))),
      lokiJsonShaped.map((v) => Buffer.from(JSON.stringify(v) ?? '')),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), body, async ([path, type], bytes) => {
        const reply = await fetch(`${svc.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': type },
          body: bytes,
        });
        await reply.arrayBuffer();
        expect(reply.status).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });
});
