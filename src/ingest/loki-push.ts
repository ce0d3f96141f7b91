/**
 * The Grafana Loki push API (`POST /loki/api/v1/push`): a PushRequest as JSON
 * (`{"streams":[{"stream":{labels},"values":[["<unix ns>","<line>",{metadata}?]]}]}`) or as
 * snappy-compressed protobuf (`logproto.PushRequest` of Loki's pkg/push/push.proto, defined below
 * with protobufjs). Each entry maps to an Event:
 *
 * - topic: label `topic`, else `service_name`, else `job`, else `loki`;
 * - source: label `host`, else `hostname`, else `instance`, else the topic;
 * - event_id: derived from the stream's labels, the nanosecond timestamp and the line: Loki's own
 *   rule for what is a duplicate, so a client's retry is counted as duplicates;
 * - timestamp: the entry's, to the nanosecond in the payload (the store keeps microseconds);
 * - payload: `{line, labels, structured_metadata, timestamp_ns}`.
 */
import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import { AggregatorError } from '../errors.js';
import { canonicalText, contentIdOfText } from './content-id.js';
import type { MappedEvent } from './event-validation.js';
import { timestampFromNanos } from './nanos.js';

/** Field numbers and types of Loki's push.proto (package logproto). */
const LOKI_PUSH_PROTO = `
syntax = "proto3";
package logproto;
import "google/protobuf/timestamp.proto";
message PushRequest { repeated StreamAdapter streams = 1; }
message PushResponse {}
message StreamAdapter {
  string labels = 1;
  repeated EntryAdapter entries = 2;
  uint64 hash = 3;
}
message LabelPairAdapter {
  string name = 1;
  string value = 2;
}
message EntryAdapter {
  google.protobuf.Timestamp timestamp = 1;
  string line = 2;
  repeated LabelPairAdapter structuredMetadata = 3;
}
`;

const root = new protobuf.Root();
// google.protobuf.Timestamp, from the well-known types protobufjs ships.
root.addJSON(protobuf.common.get('google/protobuf/timestamp.proto')?.nested ?? {});
const PushRequest = (() => {
  protobuf.parse(LOKI_PUSH_PROTO, root);
  root.resolveAll();
  return root.lookupType('logproto.PushRequest');
})();

/**
 * Encodes a PushRequest given as a plain object (`{streams: [{labels, entries: [{timestamp:
 * {seconds, nanos}, line, structuredMetadata}]}]}`) as protobuf compressed with snappy, the way
 * Promtail sends it. For clients of this service such as the benchmark.
 */
export function encodeLokiProtobuf(request: Record<string, unknown>): Buffer {
  return Buffer.from(snappy.compress(PushRequest.encode(PushRequest.fromObject(request)).finish()));
}

interface ProtoPushRequest {
  readonly streams?: readonly {
    readonly labels?: string;
    readonly entries?: readonly {
      readonly timestamp?: {
        readonly seconds?: number | { toString(): string };
        readonly nanos?: number;
      } | null;
      readonly line?: string;
      readonly structuredMetadata?: readonly { readonly name?: string; readonly value?: string }[];
    }[];
  }[];
}

/** One entry of a push: its mapped event, or why it was refused (with where it was). */
export type MappedEntry =
  | { readonly ok: true; readonly event: MappedEvent }
  | { readonly ok: false; readonly reason: string };

/** An entry as both encodings read: its stream, nanosecond time (digits), line, metadata. */
interface Entry {
  readonly stream: StreamContext;
  readonly nanos: string;
  readonly line: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** What every entry of a stream shares, worked out once per stream. */
interface StreamContext {
  readonly topic: string;
  readonly source: string;
  /** The labels as JSON text, for the payload. */
  readonly labelsJson: string;
  /** The labels' canonical text (content-id.ts), for the event id. */
  readonly labelsCanonical: string;
}

function streamContext(labels: Readonly<Record<string, string>>): StreamContext {
  const topic = labels.topic ?? labels.service_name ?? labels.job ?? 'loki';
  return {
    topic,
    source: labels.host ?? labels.hostname ?? labels.instance ?? topic,
    labelsJson: JSON.stringify(labels),
    labelsCanonical: canonicalText(labels),
  };
}

function badRequest(message: string, cause?: unknown): AggregatorError {
  return new AggregatorError('AGG_ERR_BAD_PROTOBUF', message, [], { cause });
}

/** A plain object whose keys are data, even "__proto__". */
function record(pairs: Iterable<readonly [string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of pairs) {
    Object.defineProperty(out, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const LABEL = /\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})/y;

/**
 * Parses the label set of a protobuf stream, `{job="api", host="h\\"1"}` (Prometheus syntax,
 * Go string escapes). Returns undefined when it is not such a set.
 */
export function parseLabels(text: string): Record<string, string> | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  if (/^\{\s*\}$/.test(trimmed)) return {};
  const pairs: [string, string][] = [];
  LABEL.lastIndex = 1;
  for (;;) {
    const match = LABEL.exec(trimmed);
    if (match === null) return undefined;
    let value: string;
    try {
      value = JSON.parse(`"${match[2] ?? ''}"`) as string;
    } catch {
      return undefined;
    }
    pairs.push([match[1] ?? '', value]);
    if (match[3] === '}') return LABEL.lastIndex === trimmed.length ? record(pairs) : undefined;
  }
}

function mapEntry(entry: Entry): MappedEntry {
  const { stream, nanos, line, metadata } = entry;
  if (!/^\d{1,19}$/.test(nanos)) {
    return { ok: false, reason: `timestamp ${JSON.stringify(nanos)} is not Unix nanoseconds` };
  }
  const timestamp = timestampFromNanos(BigInt(nanos));
  if (timestamp === undefined) return { ok: false, reason: `timestamp ${nanos} is out of range` };
  const lineJson = JSON.stringify(line);
  const nanosJson = JSON.stringify(nanos);
  const metadataJson =
    Object.keys(metadata).length > 0 ? `,"structured_metadata":${JSON.stringify(metadata)}` : '';
  return {
    ok: true,
    event: {
      topic: stream.topic,
      source: stream.source,
      timestamp,
      // contentId('loki', {labels, nanos, line}), its canonical text put together from the parts.
      event_id: contentIdOfText(
        'loki',
        `{"labels":${stream.labelsCanonical},"line":${lineJson},"nanos":${nanosJson}}`,
      ),
      payloadJson: `{"line":${lineJson},"labels":${stream.labelsJson},"timestamp_ns":${nanosJson}${metadataJson}}`,
    },
  };
}

/**
 * Decodes a snappy-compressed protobuf PushRequest and maps its entries, in order. The
 * decompressed size may not exceed `maxBytes`. Throws AGG_ERR_BAD_PROTOBUF (400) for a body that
 * is not one; a stream whose labels do not parse has its entries refused.
 */
export function decodeLokiProtobuf(body: Uint8Array, maxBytes: number): MappedEntry[] {
  let decoded: ProtoPushRequest;
  try {
    const bytes = snappy.uncompress(body, maxBytes);
    decoded = PushRequest.toObject(PushRequest.decode(bytes), {
      longs: String,
      defaults: false,
    });
  } catch (error) {
    throw badRequest(
      `The body is not a snappy-compressed Loki PushRequest: ${(error as Error).message}`,
      error,
    );
  }
  const out: MappedEntry[] = [];
  for (const stream of decoded.streams ?? []) {
    const labels = parseLabels(stream.labels ?? '');
    const context = labels === undefined ? undefined : streamContext(labels);
    for (const entry of stream.entries ?? []) {
      if (context === undefined) {
        out.push({ ok: false, reason: `labels ${JSON.stringify(stream.labels)} do not parse` });
        continue;
      }
      const seconds = BigInt(String(entry.timestamp?.seconds ?? 0));
      const nanos = seconds * 1_000_000_000n + BigInt(entry.timestamp?.nanos ?? 0);
      out.push(
        mapEntry({
          stream: context,
          nanos: nanos.toString(),
          line: entry.line ?? '',
          metadata: record(
            (entry.structuredMetadata ?? []).map((p) => [p.name ?? '', p.value ?? ''] as const),
          ),
        }),
      );
    }
  }
  return out;
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

/**
 * Decodes a JSON PushRequest and maps its entries, in order. Throws AGG_ERR_BAD_JSON (400) for
 * text that is not JSON or not shaped as a push; an entry that is not `[ns, line, metadata?]` is
 * refused alone.
 */
export function decodeLokiJson(text: string): MappedEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new AggregatorError(
      'AGG_ERR_BAD_JSON',
      `The request body is not valid JSON: ${(error as Error).message}`,
    );
  }
  const streams = (parsed as { streams?: unknown } | null)?.streams;
  if (!Array.isArray(streams)) {
    throw new AggregatorError('AGG_ERR_BAD_JSON', 'The body must be {"streams": [...]}');
  }
  const out: MappedEntry[] = [];
  for (const stream of streams as unknown[]) {
    const labels = (stream as { stream?: unknown } | null)?.stream;
    const values = (stream as { values?: unknown } | null)?.values;
    if (!Array.isArray(values)) {
      throw new AggregatorError('AGG_ERR_BAD_JSON', 'Each stream must have a "values" array');
    }
    const context = isStringRecord(labels)
      ? streamContext(record(Object.entries(labels)))
      : undefined;
    for (const value of values as unknown[]) {
      if (context === undefined) {
        out.push({ ok: false, reason: 'stream labels must be an object of strings' });
        continue;
      }
      const [nanos, line, metadata] = Array.isArray(value) ? (value as unknown[]) : [];
      const nanosText =
        typeof nanos === 'number' && Number.isSafeInteger(nanos) ? String(nanos) : nanos;
      if (
        typeof nanosText !== 'string' ||
        typeof line !== 'string' ||
        (metadata !== undefined && !isStringRecord(metadata))
      ) {
        out.push({
          ok: false,
          reason: 'an entry must be ["<unix nanoseconds>", "<line>", {structured metadata}?]',
        });
        continue;
      }
      out.push(
        mapEntry({
          stream: context,
          nanos: nanosText,
          line,
          metadata: record(Object.entries(metadata ?? {})),
        }),
      );
    }
  }
  return out;
}
