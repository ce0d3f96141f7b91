/**
 * OTLP/HTTP logs (OpenTelemetry Protocol 1.x, `opentelemetry/proto/collector/logs/v1`): decodes an
 * ExportLogsServiceRequest in its binary protobuf or its JSON encoding with the protobufjs code
 * generated from the published OTLP definitions (shipped by `@opentelemetry/otlp-transformer`),
 * and maps each LogRecord to an Event:
 *
 * - topic: resource attribute `service.name`, `unknown_service` when absent;
 * - source: `service.instance.id`, else `host.name`, else the topic;
 * - event_id: record attribute `log.record.uid`, else derived from the record's content (see
 *   content-id.ts), so an exporter retrying a batch sends duplicates;
 * - timestamp: `timeUnixNano`, else `observedTimeUnixNano`, else the record is refused;
 * - payload: body, severity, attributes, resource, scope, trace and span ids, times, as JSON.
 *
 * AnyValue maps to plain JSON: strings, booleans, doubles (NaN and infinities as the strings
 * "NaN", "Infinity", "-Infinity"), integers as numbers when a 64-bit float holds them exactly and
 * as decimal strings otherwise, bytes as base64, arrays as arrays, key-value lists as objects.
 */
import generated from '@opentelemetry/otlp-transformer/build/src/generated/root.js';
import { AggregatorError } from '../errors.js';
import { MAX_JSON_DEPTH } from '../http/json-limits.js';
import { contentId } from './content-id.js';
import type { MappedEvent } from './event-validation.js';
import { timestampFromNanos } from './nanos.js';

/** A protobufjs 64-bit integer (Long) or a number when it fits. */
type Int64 = number | { toString(): string };

interface AnyValue {
  /** Which member of the `value` oneof is set. */
  readonly value?:
    | 'stringValue'
    | 'boolValue'
    | 'intValue'
    | 'doubleValue'
    | 'arrayValue'
    | 'kvlistValue'
    | 'bytesValue';
  readonly stringValue?: string | null;
  readonly boolValue?: boolean | null;
  readonly intValue?: Int64 | null;
  readonly doubleValue?: number | null;
  readonly arrayValue?: { readonly values?: readonly AnyValue[] } | null;
  readonly kvlistValue?: { readonly values?: readonly KeyValue[] } | null;
  readonly bytesValue?: Uint8Array | null;
}

interface KeyValue {
  readonly key?: string | null;
  readonly value?: AnyValue | null;
}

interface LogRecord {
  readonly timeUnixNano?: Int64 | null;
  readonly observedTimeUnixNano?: Int64 | null;
  readonly severityNumber?: number | null;
  readonly severityText?: string | null;
  readonly body?: AnyValue | null;
  readonly attributes?: readonly KeyValue[];
  readonly droppedAttributesCount?: number | null;
  readonly flags?: number | null;
  readonly traceId?: Uint8Array | null;
  readonly spanId?: Uint8Array | null;
  readonly eventName?: string | null;
}

interface ExportLogsServiceRequest {
  readonly resourceLogs?: readonly {
    readonly resource?: { readonly attributes?: readonly KeyValue[] } | null;
    readonly schemaUrl?: string | null;
    readonly scopeLogs?: readonly {
      readonly scope?: {
        readonly name?: string | null;
        readonly version?: string | null;
        readonly attributes?: readonly KeyValue[];
      } | null;
      readonly logRecords?: readonly LogRecord[];
    }[];
  }[];
}

interface MessageType<T> {
  decode(bytes: Uint8Array): T;
  fromObject(object: Record<string, unknown>): T;
  encode(message: T): { finish(): Uint8Array };
  toObject(message: T, options: Record<string, unknown>): Record<string, unknown>;
}

interface ExportLogsServiceResponse {
  readonly partialSuccess?: { rejectedLogRecords?: number; errorMessage?: string };
}

const logsV1 = (
  generated as unknown as {
    opentelemetry: {
      proto: {
        collector: {
          logs: {
            v1: {
              ExportLogsServiceRequest: MessageType<ExportLogsServiceRequest>;
              ExportLogsServiceResponse: MessageType<ExportLogsServiceResponse>;
            };
          };
        };
      };
    };
  }
).opentelemetry.proto.collector.logs.v1;

/**
 * Encodes an ExportLogsServiceRequest given as a plain object (OTLP/JSON field names, 64-bit
 * integers as decimal strings): protobuf bytes, or the OTLP/JSON text. For clients of this
 * service that have no OpenTelemetry SDK at hand, such as the benchmark.
 */
export function encodeOtlpRequest(
  request: Record<string, unknown>,
  json: boolean,
): Buffer | string {
  const type = logsV1.ExportLogsServiceRequest;
  const message = type.fromObject(request);
  if (json) return JSON.stringify(type.toObject(message, { longs: String, enums: Number }));
  return Buffer.from(type.encode(message).finish());
}

/** One record of a request: its mapped event, or why it cannot become one. */
export type MappedRecord =
  | { readonly ok: true; readonly event: MappedEvent }
  | { readonly ok: false; readonly reason: string };

/** A record that cannot be mapped (too deep, no time); the rest of the request goes on. */
class RecordRefused extends Error {}

function badRequest(message: string, cause?: unknown): AggregatorError {
  return new AggregatorError('AGG_ERR_BAD_PROTOBUF', message, [], { cause });
}

/** Decodes a binary ExportLogsServiceRequest; AGG_ERR_BAD_PROTOBUF (400) if it is not one. */
export function decodeOtlpProtobuf(bytes: Uint8Array): ExportLogsServiceRequest {
  try {
    return logsV1.ExportLogsServiceRequest.decode(bytes);
  } catch (error) {
    throw badRequest(
      `The body is not an OTLP ExportLogsServiceRequest: ${(error as Error).message}`,
      error,
    );
  }
}

const HEX_ID = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * OTLP/JSON writes trace and span ids as hex where protobuf JSON would use base64 (OTLP
 * specification, "JSON Protobuf Encoding"); they are turned to base64 for protobufjs.
 */
function hexIdsToBase64(request: unknown): void {
  const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
  for (const resourceLogs of list((request as { resourceLogs?: unknown })?.resourceLogs)) {
    for (const scopeLogs of list((resourceLogs as { scopeLogs?: unknown })?.scopeLogs)) {
      for (const record of list((scopeLogs as { logRecords?: unknown })?.logRecords)) {
        if (typeof record !== 'object' || record === null) continue;
        const fields = record as Record<string, unknown>;
        for (const name of ['traceId', 'spanId']) {
          const hex = fields[name];
          if (hex === undefined || hex === null) continue;
          if (typeof hex !== 'string' || !HEX_ID.test(hex)) {
            const shown = JSON.stringify(hex).slice(0, 40);
            throw badRequest(`logRecords[].${name} must be a hex string, got ${shown}`);
          }
          fields[name] = Buffer.from(hex, 'hex').toString('base64');
        }
      }
    }
  }
}

/** Decodes an ExportLogsServiceRequest in the OTLP/JSON encoding; AGG_ERR_BAD_PROTOBUF if not. */
export function decodeOtlpJson(text: string): ExportLogsServiceRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw badRequest(`The body is not valid JSON: ${(error as Error).message}`, error);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest('The body must be a JSON object (an ExportLogsServiceRequest)');
  }
  hexIdsToBase64(parsed);
  try {
    return logsV1.ExportLogsServiceRequest.fromObject(parsed as Record<string, unknown>);
  } catch (error) {
    throw badRequest(
      `The body is not an OTLP ExportLogsServiceRequest: ${(error as Error).message}`,
      error,
    );
  }
}

/** Encodes the answer: protobuf bytes, or the OTLP/JSON text. */
export function encodeOtlpResponse(
  partial: { rejected: number; errorMessage: string } | undefined,
  json: boolean,
): Buffer | string {
  const type = logsV1.ExportLogsServiceResponse;
  const message = type.fromObject(
    partial === undefined
      ? {}
      : {
          partialSuccess: {
            rejectedLogRecords: partial.rejected,
            errorMessage: partial.errorMessage,
          },
        },
  );
  if (json) return JSON.stringify(type.toObject(message, { longs: String }));
  return Buffer.from(type.encode(message).finish());
}

function int64(value: Int64 | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') return Number.isFinite(value) ? BigInt(Math.trunc(value)) : 0n;
  const { low, high, unsigned } = value as { low?: unknown; high?: unknown; unsigned?: unknown };
  if (typeof low === 'number' && typeof high === 'number') {
    // A protobufjs Long: its two 32-bit halves, without printing it in decimal and parsing that.
    const bits = (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
    return unsigned === true ? bits : BigInt.asIntN(64, bits);
  }
  return BigInt(value.toString());
}

/** A 64-bit integer as JSON: a number when a float holds it exactly, else its digits. */
function jsonInteger(value: bigint): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : value.toString();
}

function jsonDouble(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

/**
 * `depth` is the JSON nesting level of the value made (an array or object inside the payload's
 * members counts one per level); past MAX_JSON_DEPTH the record is refused before deeper
 * recursion, and the event checker (event-validation.ts) judges the exact depth of the whole event.
 */
function anyValueToJson(value: AnyValue | null | undefined, depth: number): unknown {
  if (value === null || value === undefined) return null;
  if (depth > MAX_JSON_DEPTH) {
    throw new RecordRefused(`values are nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
  switch (value.value) {
    case 'stringValue':
      return value.stringValue ?? '';
    case 'boolValue':
      return value.boolValue === true;
    case 'intValue':
      return jsonInteger(int64(value.intValue));
    case 'doubleValue':
      return jsonDouble(value.doubleValue ?? 0);
    case 'bytesValue':
      return Buffer.from(value.bytesValue ?? []).toString('base64');
    case 'arrayValue':
      return (value.arrayValue?.values ?? []).map((v) => anyValueToJson(v, depth + 1));
    case 'kvlistValue':
      return keyValuesToJson(value.kvlistValue?.values, depth);
    case undefined:
      return null;
    default: {
      const unknown: never = value.value;
      return unknown;
    }
  }
}

function keyValuesToJson(
  list: readonly KeyValue[] | undefined,
  depth: number,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) {
    const key = kv.key ?? '';
    const value = anyValueToJson(kv.value, depth + 1);
    // A plain data property even for "__proto__": the payload is data, never a prototype.
    if (key === '__proto__') {
      Object.defineProperty(out, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      out[key] = value;
    }
  }
  return out;
}

function hex(bytes: Uint8Array | null | undefined): string | undefined {
  return bytes === null || bytes === undefined || bytes.length === 0
    ? undefined
    : Buffer.from(bytes).toString('hex');
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Maps every LogRecord of a decoded request, in order (resource by resource, scope by scope).
 * A record that cannot be mapped is returned with its reason; the others are not affected. The
 * resource and the scope are converted and serialised once for all their records.
 */
export function mapOtlpLogs(request: ExportLogsServiceRequest): MappedRecord[] {
  const out: MappedRecord[] = [];
  const refuseAll = (records: readonly unknown[] | undefined, reason: string) => {
    for (let i = 0; i < (records ?? []).length; i++) out.push({ ok: false, reason });
  };
  for (const resourceLogs of request.resourceLogs ?? []) {
    let resource: Record<string, unknown>;
    try {
      resource = keyValuesToJson(resourceLogs.resource?.attributes, 1);
    } catch (error) {
      if (!(error instanceof RecordRefused)) throw error;
      const reason = `resource: ${error.message}`;
      for (const scopeLogs of resourceLogs.scopeLogs ?? []) refuseAll(scopeLogs.logRecords, reason);
      continue;
    }
    const topic = nonEmptyString(resource['service.name']) ?? 'unknown_service';
    const source =
      nonEmptyString(resource['service.instance.id']) ??
      nonEmptyString(resource['host.name']) ??
      topic;
    const resourceJson = JSON.stringify(resource);
    for (const scopeLogs of resourceLogs.scopeLogs ?? []) {
      let scope: Record<string, unknown>;
      try {
        scope = scopeToJson(scopeLogs.scope);
      } catch (error) {
        if (!(error instanceof RecordRefused)) throw error;
        refuseAll(scopeLogs.logRecords, `scope: ${error.message}`);
        continue;
      }
      const context = {
        topic,
        source,
        resource,
        resourceJson,
        scope,
        scopeJson: JSON.stringify(scope),
      };
      for (const record of scopeLogs.logRecords ?? []) {
        try {
          out.push({ ok: true, event: mapRecord(record, context) });
        } catch (error) {
          if (!(error instanceof RecordRefused)) throw error;
          out.push({ ok: false, reason: error.message });
        }
      }
    }
  }
  return out;
}

/** The instrumentation scope's name, version and attributes, each only when set. */
function scopeToJson(
  scope:
    | { name?: string | null; version?: string | null; attributes?: readonly KeyValue[] }
    | null
    | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (nonEmptyString(scope?.name) !== undefined) out.name = scope?.name;
  if (nonEmptyString(scope?.version) !== undefined) out.version = scope?.version;
  if ((scope?.attributes ?? []).length > 0) out.attributes = keyValuesToJson(scope?.attributes, 1);
  return out;
}

interface RecordContext {
  readonly topic: string;
  readonly source: string;
  readonly resource: Record<string, unknown>;
  readonly resourceJson: string;
  readonly scope: Record<string, unknown>;
  readonly scopeJson: string;
}

/**
 * One record's event. The payload holds the record's fields that are set, as OTLP/JSON leaves
 * out fields at their default value (severity 0, empty text, no attributes, flags 0, time 0); its
 * JSON text is put together from the parts, the resource and scope spliced in as serialised once.
 */
function mapRecord(record: LogRecord, context: RecordContext): MappedEvent {
  const time = int64(record.timeUnixNano);
  const observed = int64(record.observedTimeUnixNano);
  const at = time !== 0n ? time : observed;
  if (at === 0n) throw new RecordRefused('has neither timeUnixNano nor observedTimeUnixNano');
  const timestamp = timestampFromNanos(at);
  if (timestamp === undefined) throw new RecordRefused(`time ${at} ns is out of range`);
  const attributes = keyValuesToJson(record.attributes, 1);
  const hasAttributes = (record.attributes ?? []).length > 0;
  const hasScope = context.scopeJson !== '{}';
  const hasResource = context.resourceJson !== '{}';
  const fields: Record<string, unknown> = {
    body: record.body?.value === undefined ? undefined : anyValueToJson(record.body, 1),
    severity_number: record.severityNumber || undefined,
    severity_text: nonEmptyString(record.severityText),
    attributes: hasAttributes ? attributes : undefined,
    trace_id: hex(record.traceId),
    span_id: hex(record.spanId),
    flags: record.flags || undefined,
    event_name: nonEmptyString(record.eventName),
    time_unix_nano: time !== 0n ? time.toString() : undefined,
    observed_time_unix_nano: observed !== 0n ? observed.toString() : undefined,
  };
  const own = JSON.stringify(fields);
  const spliced = [
    hasResource ? `"resource":${context.resourceJson}` : '',
    hasScope ? `"scope":${context.scopeJson}` : '',
  ].filter((part) => part !== '');
  const payloadJson =
    spliced.length === 0
      ? own
      : own === '{}'
        ? `{${spliced.join(',')}}`
        : `${own.slice(0, -1)},${spliced.join(',')}}`;
  const uid = attributes['log.record.uid'];
  const eventId =
    typeof uid === 'string' && uid !== ''
      ? uid
      : contentId('otlp', {
          ...fields,
          resource: hasResource ? context.resource : undefined,
          scope: hasScope ? context.scope : undefined,
        } as Parameters<typeof contentId>[1]);
  return {
    topic: context.topic,
    event_id: eventId,
    timestamp,
    source: context.source,
    payloadJson,
  };
}
