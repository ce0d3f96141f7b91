/**
 * OTLP/HTTP logs through the real OpenTelemetry JS SDK exporters (protobuf and JSON), on every
 * backend: a batch is exported, then exported again as an exporter retry would, and the stored
 * rows, the counters and the protocol's answers are checked.
 */
import { randomUUID } from 'node:crypto';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as OtlpHttpJsonExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as OtlpProtoExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { CompressionAlgorithm } from '@opentelemetry/otlp-exporter-base';
import { JsonLogsSerializer, ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  SimpleLogRecordProcessor,
  type LogRecordExporter,
  type ReadableLogRecord,
} from '@opentelemetry/sdk-logs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { request, stats, waitForDrain } from '../helpers/http.js';
import { sourceCounts, topicEvents, verifiedConsistent } from '../helpers/topic-events.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

/** Log records made by the SDK's own logger, for a service named `service`. */
async function sdkRecords(
  service: string,
  emit: (logger: ReturnType<LoggerProvider['getLogger']>) => void,
  resource: Record<string, string> = {},
): Promise<ReadableLogRecord[]> {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': service, ...resource }),
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  emit(provider.getLogger('otlp-test', '1.2.3'));
  await provider.forceFlush();
  const records = [...memory.getFinishedLogRecords()];
  await provider.shutdown();
  return records;
}

function exportOnce(exporter: LogRecordExporter, records: ReadableLogRecord[]) {
  return new Promise<{ code: number; error?: Error }>((resolve) => {
    exporter.export(records, resolve);
  });
}

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `OTLP/HTTP logs on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      let service: string;

      beforeEach(async () => {
        svc = await startTestService(backend.name);
        service = `otlp-${randomUUID()}`;
      });
      afterEach(async () => {
        await svc?.close();
      });

      for (const [name, make] of [
        ['protobuf', (url: string) => new OtlpProtoExporter({ url })],
        ['JSON', (url: string) => new OtlpHttpJsonExporter({ url })],
      ] as const) {
        it(`stores a batch the SDK's ${name} exporter sends, and its retry only as duplicates`, async () => {
          const records = await sdkRecords(
            service,
            (logger) => {
              logger.emit({
                severityNumber: SeverityNumber.INFO,
                severityText: 'INFO',
                body: 'first line',
                attributes: { 'http.status': 200, big: 1.5 },
              });
              logger.emit({
                severityNumber: SeverityNumber.ERROR,
                body: { nested: { list: [1, 'two', true] } },
                attributes: { 'log.record.uid': `uid-${service}` },
              });
              logger.emit({ body: 'third line' });
            },
            { 'host.name': 'otlp-host' },
          );
          const exporter = make(`${svc.url}/v1/logs`);
          expect(await exportOnce(exporter, records)).toMatchObject({ code: 0 });
          expect(await exportOnce(exporter, records)).toMatchObject({ code: 0 });
          await exporter.shutdown();

          const s = await waitForDrain(svc.url, 6);
          expect(s).toMatchObject({ received: 6, unique_processed: 3, duplicate_dropped: 3 });
          expect(s.received).toBe(s.unique_processed + s.duplicate_dropped);
          const rows = await topicEvents(svc.url, service);
          expect(rows).toHaveLength(3);
          expect(await sourceCounts(svc.url, service)).toMatchObject([
            { source: 'otlp-host', events: 6, unique: 3, duplicates: 3 },
          ]);
          expect(await verifiedConsistent(svc.url)).toBe(true);
          for (const row of rows) expect(row.source).toBe('otlp-host');
          const byUid = rows.find((r) => r.event_id === `uid-${service}`);
          expect(byUid?.payload).toMatchObject({
            body: { nested: { list: [1, 'two', true] } },
            severity_number: SeverityNumber.ERROR,
            resource: { 'service.name': service, 'host.name': 'otlp-host' },
            scope: { name: 'otlp-test', version: '1.2.3' },
          });
          const first = rows.find((r) => (r.payload as { body?: unknown }).body === 'first line');
          expect(first?.event_id).toMatch(/^otlp-[\w-]{43}$/);
          expect(first?.payload).toMatchObject({
            severity_text: 'INFO',
            attributes: { 'http.status': 200, big: 1.5 },
          });
          const time = (first?.payload as { time_unix_nano: string }).time_unix_nano;
          expect(Date.parse(first?.timestamp ?? '')).toBe(
            Math.floor(Number(BigInt(time) / 1_000_000n)),
          );
        });
      }

      it('takes a gzip-compressed export (Content-Encoding is decoded before the parsers)', async () => {
        const records = await sdkRecords(service, (logger) => logger.emit({ body: 'zipped' }));
        const exporter = new OtlpProtoExporter({
          url: `${svc.url}/v1/logs`,
          compression: CompressionAlgorithm.GZIP,
        });
        expect(await exportOnce(exporter, records)).toMatchObject({ code: 0 });
        await exporter.shutdown();
        await waitForDrain(svc.url, 1);
        expect(await svc.service.store.countEvents(service)).toBe(1);
      });

      it('refuses bad records alone with partialSuccess, in the encoding of the request', async () => {
        const records = await sdkRecords(service, (logger) => {
          logger.emit({ body: 'good one' });
          logger.emit({ body: 'has a \u0000 NUL' });
          logger.emit({ body: 'good two' });
          logger.emit({ body: 'id too long', attributes: { 'log.record.uid': 'x'.repeat(300) } });
          let deep: Record<string, unknown> = { end: true };
          for (let i = 0; i < 70; i++) deep = { deeper: deep };
          logger.emit({ body: deep as never });
        });
        const proto = await fetch(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-protobuf' },
          body: ProtobufLogsSerializer.serializeRequest(records),
        });
        expect(proto.status).toBe(200);
        expect(proto.headers.get('content-type')).toBe('application/x-protobuf');
        const answer = ProtobufLogsSerializer.deserializeResponse(
          new Uint8Array(await proto.arrayBuffer()),
        );
        expect(Number(answer.partialSuccess?.rejectedLogRecords)).toBe(3);
        expect(answer.partialSuccess?.errorMessage).toMatch(/log record 1: .*NUL/);
        expect(answer.partialSuccess?.errorMessage).toMatch(
          /log record 3: event_id must be at most 255/,
        );
        expect(answer.partialSuccess?.errorMessage).toMatch(/log record 4: .*nested more than 64/);

        const json = await request<{
          partialSuccess: { rejectedLogRecords: string; errorMessage: string };
        }>(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          rawBody: new TextDecoder().decode(JsonLogsSerializer.serializeRequest(records)),
        });
        expect(json.status).toBe(200);
        expect(json.body.partialSuccess.rejectedLogRecords).toBe('3');

        const s = await waitForDrain(svc.url, 4);
        expect(s).toMatchObject({ received: 4, unique_processed: 2, duplicate_dropped: 2 });
        // Each queued message's receipt, by the id in its answer's header: the two messages carry
        // the same two good records, and whichever was applied first stored them (workers may
        // apply the second before the first), so between them the receipts hold 2 stored and 2
        // duplicates.
        const receipts = await Promise.all(
          [proto.headers, json.headers].map(async (headers) => {
            const messageId = headers.get('x-message-id') ?? '';
            expect(messageId).not.toBe('');
            const receipt = await request<{ status: string; stored: number; duplicates: number }>(
              `${svc.url}/publish/receipts/${encodeURIComponent(messageId)}`,
            );
            expect(receipt.body).toMatchObject({ status: 'applied' });
            expect(receipt.body.stored + receipt.body.duplicates).toBe(2);
            return receipt.body;
          }),
        );
        expect(receipts[0]!.stored + receipts[1]!.stored).toBe(2);
        expect(await svc.service.store.countEvents(service)).toBe(2);
      });

      it('answers a full success with an empty ExportLogsServiceResponse', async () => {
        const records = await sdkRecords(service, (logger) => logger.emit({ body: 'one' }));
        const reply = await request(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          rawBody: new TextDecoder().decode(JsonLogsSerializer.serializeRequest(records)),
        });
        expect(reply).toMatchObject({ status: 200, body: {} });
        await waitForDrain(svc.url, 1);
        expect(await svc.service.store.countEvents(service)).toBe(1);
      });

      it('answers undecodable bodies 400 with a google.rpc.Status and stores nothing', async () => {
        const proto = await fetch(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-protobuf' },
          body: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        });
        expect(proto.status).toBe(400);
        expect(proto.headers.get('content-type')).toBe('application/x-protobuf');
        const bytes = Buffer.from(await proto.arrayBuffer());
        // google.rpc.Status: field 1 (code) = 3 INVALID_ARGUMENT, then field 2 (message).
        expect([...bytes.subarray(0, 3)]).toEqual([0x08, 0x03, 0x12]);
        expect(bytes.toString('utf8')).toContain('AGG_ERR_BAD_PROTOBUF');

        const json = await request<{ code: number; message: string }>(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          rawBody: '{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
        });
        expect(json.status).toBe(400);
        expect(json.body.code).toBe(3);
        expect(json.body.message).toMatch(/traceId/);
        const notJson = await request<{ code: number }>(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          rawBody: '{"resourceLogs": [',
        });
        expect(notJson).toMatchObject({ status: 400, body: { code: 3 } });
        const wrongType = await request(`${svc.url}/v1/logs`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          rawBody: 'hello',
        });
        expect(wrongType.status).toBe(415);
        expect((await stats(svc.url)).received).toBe(0);
      });

      it('answers 503 with Retry-After and a Status when the queue is full, then takes the retry', async () => {
        const records = await sdkRecords(service, (logger) => {
          logger.emit({ body: 'a' });
          logger.emit({ body: 'b' });
        });
        const body = ProtobufLogsSerializer.serializeRequest(records);
        const send = (url: string) =>
          fetch(`${url}/v1/logs`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-protobuf' },
            body,
          });
        await svc.stop();
        const api = await startTestService(
          backend.name,
          { WORKERS_ENABLED: 'false', QUEUE_MAX_EVENTS: '1', RETRY_AFTER_SECONDS: '3' },
          svc.resources,
        );
        try {
          expect((await send(api.url)).status).toBe(200);
          // The inbox checks a depth at most 250 ms old; Redis checks it exactly.
          await new Promise((r) => setTimeout(r, 300));
          const full = await send(api.url);
          expect(full.status).toBe(503);
          expect(full.headers.get('retry-after')).toBe('3');
          expect(full.headers.get('content-type')).toBe('application/x-protobuf');
          expect(Buffer.from(await full.arrayBuffer()).toString('utf8')).toContain(
            'AGG_ERR_QUEUE_FULL',
          );
        } finally {
          await api.stop();
        }
        const workers = await startTestService(backend.name, {}, svc.resources);
        try {
          expect((await send(workers.url)).status).toBe(200);
          const s = await waitForDrain(workers.url, 4);
          expect(s).toMatchObject({ received: 4, unique_processed: 2, duplicate_dropped: 2 });
          expect(await workers.service.store.countEvents(service)).toBe(2);
        } finally {
          await workers.stop();
        }
      });
    },
  );
}
