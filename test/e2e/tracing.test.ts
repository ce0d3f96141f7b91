/**
 * Traces across processes: the service (API process plus one forked worker process,
 * WORKER_PROCESSES=1, on PostgreSQL with Redis and with the inbox) sends its spans to an OTLP/HTTP endpoint this test
 * runs (protobuf ExportTraceServiceRequest, decoded with the protobufjs root shipped by
 * @opentelemetry/otlp-transformer). Each queued publish has a `publish` span; the worker's `apply`
 * spans come from another process and link to every publish span they applied.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import generated from '@opentelemetry/otlp-transformer/build/src/generated/root.js';
import { afterEach, describe, expect, it } from 'vitest';
import { event, request } from '../helpers/http.js';
import { freePort, spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

interface Span {
  traceId: Uint8Array;
  spanId: Uint8Array;
  name: string;
  links: { traceId: Uint8Array; spanId: Uint8Array }[];
}
interface ExportRequest {
  resourceSpans: {
    resource?: {
      attributes: { key: string; value: { intValue?: number | { toString(): string } } }[];
    };
    scopeSpans: { spans: Span[] }[];
  }[];
}
interface Decoder {
  decode(bytes: Uint8Array): ExportRequest;
}
const root = generated as unknown as {
  opentelemetry: {
    proto: { collector: { trace: { v1: { ExportTraceServiceRequest: Decoder } } } };
  };
};
const ExportTraceServiceRequest =
  root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** An OTLP/HTTP traces endpoint that keeps every span with the pid of the process that sent it. */
async function collector(): Promise<{
  url: string;
  spans: { name: string; id: string; links: string[]; pid: string }[];
  server: Server;
}> {
  const spans: { name: string; id: string; links: string[]; pid: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = ExportTraceServiceRequest.decode(Buffer.concat(chunks));
      for (const rs of body.resourceSpans) {
        const pid = String(
          rs.resource?.attributes.find((a) => a.key === 'process.pid')?.value.intValue ?? '?',
        );
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            spans.push({
              name: s.name,
              id: `${hex(s.traceId)}-${hex(s.spanId)}`,
              links: s.links.map((l) => `${hex(l.traceId)}-${hex(l.spanId)}`),
              pid,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, spans, server };
}

// The message carries the traceparent in a Redis stream entry, and in an inbox row.
for (const backend of suiteBackends((b) => b === 'postgres-redis' || b === 'postgres-inbox')) {
  describe.skipIf(backend.skip !== undefined)(
    `traces across processes on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let service: ServiceProcess | undefined;
      let resources: TestResources | undefined;
      let server: Server | undefined;
      afterEach(async () => {
        await service?.stop();
        await resources?.dispose();
        server?.close();
      });

      it('the worker process links its apply spans to the API process publish spans', async () => {
        const otlp = await collector();
        server = otlp.server;
        resources = await createResources(backend.name);
        service = await spawnService({
          ...resources.env,
          WORKER_PROCESSES: '1',
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        });
        const topic = `test-${randomUUID()}`;
        for (let i = 0; i < 3; i++) {
          const reply = await request(`${service.url}/publish`, {
            method: 'POST',
            body: { events: [event(topic, i), event(topic, i + 1)] },
          });
          expect(reply.status).toBe(200);
        }
        const publishes = () => otlp.spans.filter((s) => s.name === 'publish');
        const linked = () =>
          new Set(otlp.spans.filter((s) => s.name === 'apply').flatMap((s) => s.links));
        await expect
          .poll(() => publishes().every((p) => linked().has(p.id)) && publishes().length === 3, {
            timeout: 20_000,
          })
          .toBe(true);
        const apply = otlp.spans.filter((s) => s.name === 'apply' && s.links.length > 0);
        // Published in the API process, applied in the forked worker process.
        const apiPids = new Set(publishes().map((p) => p.pid));
        expect(apiPids.size).toBe(1);
        for (const a of apply) expect(apiPids.has(a.pid)).toBe(false);
      }, 60_000);
    },
  );
}
