/**
 * Checks the events a wire-format decoder mapped, one by one, with the rules POST /publish applies
 * to a whole request: the same JSON schema (topic, event_id and source names, timestamp), text
 * PostgreSQL can store (no NUL, no lone surrogate) and JSON it can read (nesting depth, numbers).
 * A refused event is refused alone, with the reason, so the records around it still go in.
 */
import type { ValidateFunction } from 'ajv';
import { validationDetails } from '../http/errors-json.js';
import { MAX_JSON_DEPTH, jsonLimitProblem } from '../http/json-limits.js';
import { eventSchema } from '../http/schemas/event-schemas.js';
import { createBodyAjv } from '../http/schemas/validators.js';

/** An event as a decoder mapped it; the payload is JSON text of an object. */
export interface MappedEvent {
  readonly topic: string;
  readonly event_id: string;
  readonly timestamp: string;
  readonly source: string;
  /**
   * The payload as JSON text (an object). Decoders that received JSON text pass it on as it came,
   * so numbers keep every digit; the others serialise what they decoded.
   */
  readonly payloadJson: string;
}

/** The outcome of checking one mapped event. */
export type CheckedEvent =
  { readonly ok: true; readonly json: string } | { readonly ok: false; readonly reason: string };

type HeadValidators = { readonly names: ValidateFunction; readonly item: ValidateFunction };
let compiled: HeadValidators | undefined;

/**
 * The event schema in two parts: topic and source, which a shipper's batch repeats from record
 * to record (checked once per pair, see eventChecker), and event_id and timestamp.
 */
function headValidators(): HeadValidators {
  if (compiled === undefined) {
    const ajv = createBodyAjv();
    const part = (fields: readonly (keyof typeof eventSchema.properties)[]) =>
      ajv.compile({
        type: 'object',
        required: fields,
        properties: Object.fromEntries(fields.map((f) => [f, eventSchema.properties[f]])),
      });
    compiled = { names: part(['topic', 'source']), item: part(['event_id', 'timestamp']) };
  }
  return compiled;
}

function problemOf(validate: ValidateFunction, value: object): string | undefined {
  if (validate(value)) return undefined;
  return validationDetails(validate.errors ?? [])
    .map((d) => `${d.field} ${d.reason}`)
    .join('; ');
}

/** `\u0000` or an escaped surrogate after an even number of backslashes: JSON.stringify's marks. */
const SUSPICIOUS_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89a-fA-F])/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function textProblem(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return `${path} must not contain the NUL character (\\u0000)`;
    if (LONE_SURROGATE.test(value)) return `${path} must not contain a lone UTF-16 surrogate`;
    return undefined;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = textProblem(value[i], `${path}[${i}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const problem = textProblem(key, `${path} (a key)`) ?? textProblem(item, `${path}.${key}`);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}

/** Pairs of topic and source one checker remembers at most. */
const MAX_REMEMBERED_NAMES = 1024;

/**
 * A checker for the mapped events of one request: `check(event)` returns the event's JSON text
 * for the queue envelope, `{"topic":…,"event_id":…,"timestamp":…,"source":…,"payload":…}` with
 * the payload spliced in as it is, or why the event is refused. The rules are POST /publish's
 * for each event (the event schema, JSON limits, storable text); a topic and source pair is
 * checked once per request, since a shipper's records share their resource or stream.
 */
export function eventChecker(): (event: MappedEvent) => CheckedEvent {
  const { names, item } = headValidators();
  const namesProblems = new Map<string, string | undefined>();
  return (event) => {
    const pair = `${event.topic}\u0000${event.source}`;
    let namesProblem: string | undefined;
    if (namesProblems.has(pair)) {
      namesProblem = namesProblems.get(pair);
    } else {
      namesProblem = problemOf(names, { topic: event.topic, source: event.source });
      if (namesProblems.size < MAX_REMEMBERED_NAMES) namesProblems.set(pair, namesProblem);
    }
    const head = {
      topic: event.topic,
      event_id: event.event_id,
      timestamp: event.timestamp,
      source: event.source,
    };
    const itemProblem = problemOf(item, head);
    if (namesProblem !== undefined || itemProblem !== undefined) {
      return { ok: false, reason: [namesProblem, itemProblem].filter(Boolean).join('; ') };
    }
    const json = `${JSON.stringify(head).slice(0, -1)},"payload":${event.payloadJson}}`;
    // The event sits at depth 3 of the queued envelope `{"events":[event]}`.
    const limit = jsonLimitProblem(Buffer.from(json), MAX_JSON_DEPTH - 2);
    if (limit !== undefined) return { ok: false, reason: `${limit.field}: ${limit.reason}` };
    if (SUSPICIOUS_ESCAPE.test(json)) {
      const problem = textProblem(JSON.parse(json) as unknown, 'event');
      if (problem !== undefined) return { ok: false, reason: problem };
    }
    return { ok: true, json };
  };
}

/** Checks one mapped event alone (see eventChecker, which a request's events should share). */
export function checkEvent(event: MappedEvent): CheckedEvent {
  return eventChecker()(event);
}
