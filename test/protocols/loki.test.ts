/**
 * Loki push through real Loki clients from npm on every backend: `pino-loki` (JSON) and
 * `winston-loki` (protobuf compressed with snappy). Each sends a batch, then the same batch again
 * as a retry would; stored rows, counters and answers are checked, and bad entries are refused
 * alone.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import protobuf from 'protobufjs';
import { pino } from 'pino';
import { pinoLoki } from 'pino-loki';
import snappy from 'snappyjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import LokiTransport from 'winston-loki';
import { parseLabels } from '../../src/ingest/loki-push.js';
import { request, stats, waitForDrain } from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';
import { sourceCounts, topicEvents, verifiedConsistent } from '../helpers/topic-events.js';

interface LokiPayload {
  line: string;
  labels: Record<string, string>;
  timestamp_ns: string;
  structured_metadata?: Record<string, string>;
}

/** Logs `messages` through pino and pino-loki as one batch, all at `timeMs`. */
async function sendWithPinoLoki(
  host: string,
  labels: Record<string, string>,
  messages: readonly { msg: string; topic?: string; meta?: Record<string, string> }[],
  timeMs: number,
): Promise<void> {
  const transport = pinoLoki({
    host,
    labels,
    propsToLabels: ['topic'],
    batching: { interval: 60 },
    silenceErrors: true,
  });
  const logger = pino(
    { base: { hostname: 'pino-host' }, timestamp: () => `,"time":${timeMs}` },
    transport,
  );
  for (const m of messages) logger.info(m);
  transport.end();
  await once(transport, 'close');
}

/** Logs `messages` through winston and winston-loki (protobuf + snappy) as one batch. */
async function sendWithWinstonLoki(
  host: string,
  labels: Record<string, string>,
  messages: readonly string[],
  timestamp: string,
): Promise<void> {
  const transport = new LokiTransport({
    host,
    labels,
    json: false,
    batching: true,
    interval: 0.05,
    replaceTimestamp: false,
    gracefulShutdown: false,
    clearOnError: true,
  });
  const logger = winston.createLogger({
    // winston-loki types its transport against its own copy of winston-transport.
    transports: [transport as unknown as winston.transport],
  });
  for (const message of messages) logger.info({ message, timestamp });
  await transport.flush();
  await transport.close();
}

describe('Loki label sets', () => {
  it('reads Prometheus label syntax with escapes, and refuses anything else', () => {
    expect(parseLabels('{job="api", host="h\\"1"}')).toEqual({ job: 'api', host: 'h"1' });
    expect(parseLabels('{}')).toEqual({});
    expect(parseLabels('{a="b"')).toBeUndefined();
    expect(parseLabels('{a="b"} trailing')).toBeUndefined();
    expect(parseLabels('job="api"')).toBeUndefined();
  });
});

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `Loki push on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      let topic: string;

      beforeEach(async () => {
        svc = await startTestService(backend.name);
        topic = `loki-${randomUUID()}`;
      });
      afterEach(async () => {
        await svc?.close();
      });

      it('stores a pino-loki batch (JSON) and its retry only as duplicates', async () => {
        const messages = [
          { msg: 'one', meta: { trace_id: 'abc' } },
          { msg: 'two' },
          { msg: 'three' },
        ];
        const timeMs = 1714564800123;
        await sendWithPinoLoki(svc.url, { topic }, messages, timeMs);
        await sendWithPinoLoki(svc.url, { topic }, messages, timeMs);
        const s = await waitForDrain(svc.url, 6);
        expect(s).toMatchObject({ received: 6, unique_processed: 3, duplicate_dropped: 3 });
        const rows = await topicEvents(svc.url, topic);
        expect(rows).toHaveLength(3);
        for (const row of rows) {
          expect(row.source).toBe('pino-host');
          expect(row.event_id).toMatch(/^loki-[\w-]{43}$/);
          expect(Date.parse(row.timestamp)).toBe(timeMs);
          const payload = row.payload as unknown as LokiPayload;
          expect(payload.labels).toMatchObject({ topic, hostname: 'pino-host', level: 'info' });
          expect(payload.timestamp_ns).toBe(`${timeMs}000000`);
        }
        expect(await sourceCounts(svc.url, topic)).toMatchObject([
          { source: 'pino-host', events: 6, unique: 3, duplicates: 3 },
        ]);
        expect(await verifiedConsistent(svc.url)).toBe(true);
        const one = rows.find((r) => (r.payload as unknown as LokiPayload).line.includes('"one"'));
        expect((one?.payload as unknown as LokiPayload).structured_metadata).toEqual({
          trace_id: 'abc',
        });
      });

      it('stores a winston-loki batch (protobuf + snappy) and its retry only as duplicates', async () => {
        const lines = ['alpha', 'beta', 'gamma', 'delta'];
        const at = '2024-05-01T12:00:00.250Z';
        await sendWithWinstonLoki(svc.url, { job: topic, host: 'winston-host' }, lines, at);
        await sendWithWinstonLoki(svc.url, { job: topic, host: 'winston-host' }, lines, at);
        const s = await waitForDrain(svc.url, 8);
        expect(s).toMatchObject({ received: 8, unique_processed: 4, duplicate_dropped: 4 });
        const rows = await topicEvents(svc.url, topic);
        expect(rows).toHaveLength(4);
        for (const row of rows) {
          expect(row.source).toBe('winston-host');
          expect(Date.parse(row.timestamp)).toBe(Date.parse(at));
          expect((row.payload as unknown as LokiPayload).labels).toMatchObject({
            job: topic,
            level: 'info',
          });
        }
        // winston-loki writes the message, then the other fields as JSON.
        expect(
          rows.map((r) => (r.payload as unknown as LokiPayload).line.split(' ')[0]).sort(),
        ).toEqual([...lines].sort());
      });

      it('stores the valid entries of a push and answers 400 naming the refused ones', async () => {
        await sendWithPinoLoki(
          svc.url,
          {},
          [
            { msg: 'kept', topic },
            { msg: 'bad topic', topic: 'bad\u0001topic' },
            { msg: 'also kept', topic },
          ],
          1714564800000,
        );
        const s = await waitForDrain(svc.url, 2);
        expect(s).toMatchObject({ received: 2, unique_processed: 2 });
        expect(await svc.service.store.countEvents(topic)).toBe(2);

        const reply = await request<string>(`${svc.url}/loki/api/v1/push`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          rawBody: JSON.stringify({
            streams: [
              {
                stream: { topic },
                values: [
                  ['1714564801000000000', 'good'],
                  ['not a time', 'bad time'],
                  ['1714564802000000000', 'bad\u0000line'],
                  ['1714564803000000000', 'good too', { k: 'v' }],
                ],
              },
            ],
          }),
        });
        expect(reply.status).toBe(400);
        expect(reply.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(reply.body).toMatch(/^2 of 4 entries refused \(the other 2 were accepted\)/);
        expect(reply.body).toMatch(/entry 1: timestamp "not a time"/);
        expect(reply.body).toMatch(/entry 2: .*NUL/);
        await waitForDrain(svc.url, 4);
        expect(await svc.service.store.countEvents(topic)).toBe(4);
      });

      it('answers undecodable bodies 400 in plain text and stores nothing', async () => {
        const post = (body: Uint8Array | string, type: string) =>
          fetch(`${svc.url}/loki/api/v1/push`, {
            method: 'POST',
            headers: { 'content-type': type },
            body,
          });
        const notSnappy = await post(
          Buffer.from('definitely not snappy'),
          'application/x-protobuf',
        );
        expect(notSnappy.status).toBe(400);
        expect(await notSnappy.text()).toMatch(/^AGG_ERR_BAD_PROTOBUF: /);
        const notProto = await post(
          snappy.compress(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])),
          'application/x-protobuf',
        );
        expect(notProto.status).toBe(400);
        // A snappy header that claims more than MAX_BODY_BYTES is refused before allocating.
        const huge = protobuf.Writer.create()
          .uint32(2 ** 30)
          .finish();
        const bomb = await post(Buffer.concat([huge, Buffer.from([0])]), 'application/x-protobuf');
        expect(bomb.status).toBe(400);
        expect(await bomb.text()).toMatch(/too big/);
        const notJson = await post('{"streams": [', 'application/json');
        expect(notJson.status).toBe(400);
        expect(await notJson.text()).toMatch(/^AGG_ERR_BAD_JSON: /);
        const noStreams = await post('{"entries": []}', 'application/json');
        expect(noStreams.status).toBe(400);
        expect((await stats(svc.url)).received).toBe(0);
      });
    },
  );
}
