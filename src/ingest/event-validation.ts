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

let compiled: ValidateFunction | undefined;

function schemaValidator(): ValidateFunction {
  if (compiled === undefined) {
    compiled = createBodyAjv().compile(eventSchema);
  }
  return compiled;
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

/**
 * Checks one mapped event and returns its JSON text for the queue envelope, or why it is refused.
 * The text is `{"topic":…,"event_id":…,"timestamp":…,"source":…,"payload":<payloadJson>}`, the
 * payload spliced in as it is. Cost: one schema check and one pass over the text, per event, as
 * POST /publish spends on each event of its body.
 */
export function checkEvent(event: MappedEvent): CheckedEvent {
  const head = {
    topic: event.topic,
    event_id: event.event_id,
    timestamp: event.timestamp,
    source: event.source,
  };
  const validate = schemaValidator();
  if (!validate(head)) {
    const details = validationDetails(validate.errors ?? []);
    return { ok: false, reason: details.map((d) => `${d.field} ${d.reason}`).join('; ') };
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
}
