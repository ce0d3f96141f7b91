/**
 * The shapes of a publish body, as the publishers of the replaced system send them: the envelope
 * `{"events": [Event, …]}`, a bare event `{…}`, a bare array `[Event, …]`, and NDJSON (one event
 * per line, see ndjson-body.ts). Each becomes the envelope, which is what is validated and what
 * the database reads events from. The envelope's bytes are spliced from the bytes that arrived,
 * once per request (never re-serialised: numbers stay exactly as written), and every error path
 * is told in the shape that was sent: `events[2].topic`, `[2].topic`, `topic`, `line 3: topic`.
 */
import { adoptBody, rawBodyOf } from './json-body.js';

export type PublishShape = 'envelope' | 'event' | 'array' | 'ndjson';

/** The envelope a body became, the shape it was sent in, and for NDJSON each event's line. */
export interface PublishEnvelope {
  readonly envelope: { events: unknown };
  readonly shape: PublishShape;
  /** NDJSON: the line number (from 1) of each event. */
  readonly lines?: readonly number[];
}

/** Fields only an event has: an object with none of them and no `events` is a bad envelope. */
const EVENT_FIELDS = ['topic', 'event_id', 'timestamp', 'source', 'payload'];

const ARRAY_PREFIX = Buffer.from('{"events":');
const EVENT_PREFIX = Buffer.from('{"events":[');
const ARRAY_SUFFIX = Buffer.from('}');
const EVENT_SUFFIX = Buffer.from(']}');

const ndjsonBodies = new WeakMap<object, readonly number[]>();

/** Marks an envelope built from NDJSON, with the line number of each of its events. */
export function markNdjson(envelope: object, lines: readonly number[]): void {
  ndjsonBodies.set(envelope, lines);
}

/**
 * The envelope of a parsed publish body, or undefined when the body is no object or array at
 * all (the schema then says so). The envelope's stored bytes are set for rawBodyOf.
 */
export function toEnvelope(body: unknown): PublishEnvelope | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const lines = ndjsonBodies.get(body);
  if (lines !== undefined) return { envelope: body as { events: unknown }, shape: 'ndjson', lines };
  if (Array.isArray(body)) {
    const envelope = { events: body };
    const raw = rawBodyOf(body);
    if (raw !== undefined)
      adoptBody(envelope, body, Buffer.concat([ARRAY_PREFIX, raw, ARRAY_SUFFIX]));
    return { envelope, shape: 'array' };
  }
  if ('events' in body || !EVENT_FIELDS.some((field) => field in body)) {
    return { envelope: body as { events: unknown }, shape: 'envelope' };
  }
  const envelope = { events: [body] };
  const raw = rawBodyOf(body);
  if (raw !== undefined)
    adoptBody(envelope, body, Buffer.concat([EVENT_PREFIX, raw, EVENT_SUFFIX]));
  return { envelope, shape: 'event' };
}

const EVENT_PATH = /^events\[(\d+)\](.*)$/s;

/**
 * A field path of the envelope (`events[2].topic`) told in the shape that was sent:
 * `[2].topic` (array), `topic` (bare event), `line 3: topic` (NDJSON).
 */
export function fieldInShape(field: string, sent: PublishEnvelope): string {
  if (sent.shape === 'envelope') return field;
  if (field === 'events') return 'body';
  const m = EVENT_PATH.exec(field);
  if (m === null) return field;
  const [, index = '0', rest = ''] = m;
  switch (sent.shape) {
    case 'array':
      return `[${index}]${rest}`;
    case 'event':
      return rest === '' ? 'body' : rest.replace(/^\./, '');
    case 'ndjson': {
      const line = `line ${sent.lines?.[Number(index)] ?? Number(index) + 1}`;
      return rest === '' ? line : `${line}: ${rest.replace(/^\./, '')}`;
    }
    default: {
      const never: never = sent.shape;
      return never;
    }
  }
}
