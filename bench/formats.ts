/**
 * The HTTP request that carries a batch of workload events in each wire format the service reads,
 * so the benchmark can compare them on the same workload:
 *
 * - `envelope`: POST /publish `{"events": [...]}`;
 * - `ndjson`: POST /publish, one event per line (`application/x-ndjson`);
 * - `otlp-proto`, `otlp-json`: POST /v1/logs, one ResourceLogs per (topic, source);
 * - `es-bulk`: POST /es/_bulk, a `create` action and a document per event;
 * - `loki`: POST /loki/api/v1/push, protobuf compressed with snappy, one stream per (topic, source).
 *
 * Each format maps back to the same topic, event_id, timestamp and source (docs/shippers.md), so a
 * workload's duplicates and conflicts stay what they are: OTLP carries the id in `log.record.uid`,
 * Elasticsearch in `_id`; Loki has no id field, so the line is the event id and the payload rides
 * in structured metadata, which Loki's duplicate rule (labels, time, line) leaves out. Bodies are
 * built with the libraries the service decodes them with (protobufjs, snappyjs).
 */
import { decodeBulk } from '../src/ingest/es-bulk.js';
import type { MappedEvent } from '../src/ingest/event-validation.js';
import { decodeLokiProtobuf, encodeLokiProtobuf } from '../src/ingest/loki-push.js';
import {
  decodeOtlpJson,
  decodeOtlpProtobuf,
  encodeOtlpRequest,
  mapOtlpLogs,
} from '../src/ingest/otlp-logs.js';
import type { LogEvent } from '../src/log-event.js';

export const FORMATS = [
  'envelope',
  'ndjson',
  'otlp-proto',
  'otlp-json',
  'es-bulk',
  'loki',
] as const;
export type Format = (typeof FORMATS)[number];

export interface FormattedRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

/** Whether `name` is one of FORMATS. */
export function isFormat(name: string): name is Format {
  return (FORMATS as readonly string[]).includes(name);
}

/** Events grouped by (topic, source), in first-seen order, keeping their order within a group. */
function bySender(events: readonly LogEvent[]): LogEvent[][] {
  const groups = new Map<string, LogEvent[]>();
  for (const event of events) {
    const key = JSON.stringify([event.topic, event.source]);
    let group = groups.get(key);
    if (group === undefined) groups.set(key, (group = []));
    group.push(event);
  }
  return [...groups.values()];
}

/** Unix nanoseconds of an event timestamp (millisecond precision, as the workload has). */
function nanos(timestamp: string): bigint {
  return BigInt(Date.parse(timestamp)) * 1_000_000n;
}

/** A JSON value as an OTLP AnyValue (plain object form). */
function anyValue(value: unknown): Record<string, unknown> {
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? { intValue: String(value) } : { doubleValue: value };
  }
  if (Array.isArray(value)) return { arrayValue: { values: value.map(anyValue) } };
  if (typeof value === 'object' && value !== null) {
    return {
      kvlistValue: {
        values: Object.entries(value).map(([key, v]) => ({ key, value: anyValue(v) })),
      },
    };
  }
  return {};
}

function otlpRequest(events: readonly LogEvent[]): Record<string, unknown> {
  return {
    resourceLogs: bySender(events).map((group) => ({
      resource: {
        attributes: [
          { key: 'service.name', value: { stringValue: group[0]?.topic } },
          { key: 'service.instance.id', value: { stringValue: group[0]?.source } },
        ],
      },
      scopeLogs: [
        {
          scope: { name: 'bench' },
          logRecords: group.map((event) => {
            const time = nanos(event.timestamp).toString();
            return {
              timeUnixNano: time,
              observedTimeUnixNano: time,
              body: anyValue(event.payload),
              attributes: [{ key: 'log.record.uid', value: { stringValue: event.event_id } }],
            };
          }),
        },
      ],
    })),
  };
}

function esBulk(events: readonly LogEvent[]): string {
  let body = '';
  for (const event of events) {
    body += `${JSON.stringify({ create: { _index: event.topic, _id: event.event_id } })}\n`;
    body += `${JSON.stringify({ ...event.payload, '@timestamp': event.timestamp, host: { name: event.source } })}\n`;
  }
  return body;
}

/** A Loki label value in the protobuf label set syntax, `{name="value"}`. */
function label(name: string, value: string): string {
  return `${name}=${JSON.stringify(value)}`;
}

function lokiRequest(events: readonly LogEvent[]): Record<string, unknown> {
  return {
    streams: bySender(events).map((group) => ({
      labels: `{${label('topic', group[0]?.topic ?? '')}, ${label('host', group[0]?.source ?? '')}}`,
      entries: group.map((event) => {
        const ns = nanos(event.timestamp);
        return {
          timestamp: {
            seconds: (ns / 1_000_000_000n).toString(),
            nanos: Number(ns % 1_000_000_000n),
          },
          line: event.event_id,
          structuredMetadata: [{ name: 'payload', value: JSON.stringify(event.payload) }],
        };
      }),
    })),
  };
}

/** The request that sends `events` in `format`. */
export function formatRequest(format: Format, events: readonly LogEvent[]): FormattedRequest {
  switch (format) {
    case 'envelope':
      return {
        path: '/publish',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events }),
      };
    case 'ndjson':
      return {
        path: '/publish',
        headers: { 'content-type': 'application/x-ndjson' },
        body: events.map((e) => `${JSON.stringify(e)}\n`).join(''),
      };
    case 'otlp-proto':
      return {
        path: '/v1/logs',
        headers: { 'content-type': 'application/x-protobuf' },
        body: encodeOtlpRequest(otlpRequest(events), false),
      };
    case 'otlp-json':
      return {
        path: '/v1/logs',
        headers: { 'content-type': 'application/json' },
        body: encodeOtlpRequest(otlpRequest(events), true),
      };
    case 'es-bulk':
      return {
        path: '/es/_bulk',
        headers: { 'content-type': 'application/x-ndjson' },
        body: esBulk(events),
      };
    case 'loki':
      return {
        path: '/loki/api/v1/push',
        headers: { 'content-type': 'application/x-protobuf' },
        body: encodeLokiProtobuf(lokiRequest(events)),
      };
    default: {
      const unknown: never = format;
      throw new Error(`unknown format ${String(unknown)}`);
    }
  }
}

/** The events the service's own decoder makes of one formatted request. */
function decodedEvents(format: Format, request: FormattedRequest): MappedEvent[] {
  const text = () => request.body.toString();
  const buffer = () => (Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body));
  let mapped: ({ ok: true; event: MappedEvent } | { ok: false; reason: string })[];
  switch (format) {
    case 'otlp-proto':
      mapped = mapOtlpLogs(decodeOtlpProtobuf(buffer()));
      break;
    case 'otlp-json':
      mapped = mapOtlpLogs(decodeOtlpJson(text()));
      break;
    case 'loki':
      mapped = decodeLokiProtobuf(buffer(), Number.MAX_SAFE_INTEGER);
      break;
    case 'es-bulk':
      mapped = decodeBulk(text(), undefined).map((item) =>
        item.event === undefined
          ? { ok: false, reason: 'no event' }
          : { ok: true, event: item.event },
      );
      break;
    case 'envelope':
    case 'ndjson':
      throw new Error(`${format} is published as events already`);
  }
  return mapped.map((m) => {
    if (!m.ok) throw new Error(`the ${format} mapping refused a workload event: ${m.reason}`);
    return m.event;
  });
}

/**
 * The events `format` stores for `events` sent in batches of `batch` (`--same-rows`): each batch
 * formatted and decoded by the service's own mapping, so the envelope can carry the same rows
 * (same keys, duplicates, payloads) and the comparison measures the path, not the payload size.
 */
export function rowsOf(format: Format, events: readonly LogEvent[], batch: number): LogEvent[] {
  const out: LogEvent[] = [];
  for (let i = 0; i < events.length; i += batch) {
    const request = formatRequest(format, events.slice(i, i + batch));
    for (const e of decodedEvents(format, request)) {
      out.push({
        topic: e.topic,
        event_id: e.event_id,
        timestamp: e.timestamp,
        source: e.source,
        payload: JSON.parse(e.payloadJson) as Record<string, unknown>,
      });
    }
  }
  return out;
}
