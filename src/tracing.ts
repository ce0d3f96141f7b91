/**
 * OpenTelemetry tracing, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set: a span per queued
 * publish, the W3C `traceparent` of that span carried in the queue message next to its body, and
 * a span per batch a worker applies, linked (span links) to every publish it applied, so a slow
 * request can be followed from the API process into whichever worker process stored it. Spans go
 * to the endpoint as OTLP/HTTP protobuf (`<endpoint>/v1/traces`).
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Link,
} from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

const tracer = trace.getTracer('idempotent-log-aggregator');

/**
 * Starts exporting spans to `endpoint` (an OTLP/HTTP base URL) if it is set; resolves with the
 * function that flushes and stops the exporter at shutdown. Registers the W3C trace-context
 * propagator.
 */
export function startTracing(endpoint: string | undefined): () => Promise<void> {
  if (endpoint === undefined) return () => Promise.resolve();
  const provider = new NodeTracerProvider({
    // The pid tells the API process's spans from a worker process's.
    resource: resourceFromAttributes({
      'service.name': 'idempotent-log-aggregator',
      'process.pid': process.pid,
    }),
    spanProcessors: [
      new BatchSpanProcessor(
        new OTLPTraceExporter({ url: `${endpoint.replace(/\/$/, '')}/v1/traces` }),
        // Short delay: a worker's spans reach the collector soon after its batch.
        { scheduledDelayMillis: 500 },
      ),
    ],
  });
  provider.register();
  return () => provider.shutdown();
}

/**
 * Runs `enqueue` inside a `publish` span and hands it the span's `traceparent` to carry in the
 * message (undefined when tracing is off).
 */
export async function tracedPublish<T>(
  events: number,
  enqueue: (traceparent: string | undefined) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan('publish', async (span) => {
    span.setAttribute('aggregator.events', events);
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    try {
      return await enqueue(carrier.traceparent);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Links to the publish spans whose W3C traceparents the applied messages carried. */
function linksTo(traceparents: readonly (string | undefined)[]): Link[] {
  const links: Link[] = [];
  for (const traceparent of traceparents) {
    if (traceparent === undefined || traceparent === '') continue;
    const spanContext = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent }));
    if (spanContext !== undefined) links.push({ context: spanContext });
  }
  return links;
}

/** Runs `apply` inside an `apply` span linked to the publish span of every message it applies. */
export async function tracedApply<T>(
  traceparents: readonly (string | undefined)[],
  apply: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(
    'apply',
    { links: linksTo(traceparents), root: true },
    async (span) => {
      span.setAttribute('aggregator.messages', traceparents.length);
      try {
        return await apply();
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * Runs `apply` inside an `apply` span and, once it is done, links the span to the publish span
 * of every message it applied, as its result names them (`traceparents`): for a queue whose
 * messages are claimed by the apply statement itself (the inbox), so known only afterwards.
 */
export async function tracedApplyLinkingResult<
  T extends { readonly messages: number; readonly traceparents?: readonly string[] | undefined },
>(apply: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan('apply', { root: true }, async (span) => {
    try {
      const result = await apply();
      span.setAttribute('aggregator.messages', result.messages);
      span.addLinks(linksTo(result.traceparents ?? []));
      return result;
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: String(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}
