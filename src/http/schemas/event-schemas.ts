/**
 * JSON schemas of the HTTP API. Fastify validates requests and serialises responses with them,
 * and the OpenAPI description is generated from them, so they are the single statement of the
 * contract.
 */

/**
 * Text that PostgreSQL can store and a person can read: not blank (nothing but Unicode White_Space
 * and default-ignorable code points such as the joiners), no control (Cc) or invisible formatting
 * (Cf but the joiners) characters; see text-rules.ts.
 */
const name = (description: string) =>
  ({
    type: 'string',
    minLength: 1,
    maxLength: 255,
    'x-name': true,
    description: `${description} Not blank (something visible, not only white space or joiners); no control or invisible formatting characters.`,
  }) as const;

/**
 * A topic or source given to find events, in a query or a path: what a name may be as far as a
 * comparison goes, so no control character (x-query-text, text-rules.ts), which the refusal names
 * where PostgreSQL would fail on a NUL.
 */
export const nameFilter = (description: string) =>
  ({
    type: 'string',
    minLength: 1,
    maxLength: 255,
    'x-query-text': true,
    description: `${description} No control characters.`,
  }) as const;

export const eventSchema = {
  type: 'object',
  required: ['topic', 'event_id', 'timestamp', 'source'],
  properties: {
    topic: name('Stream the event belongs to; deduplication is per topic.'),
    event_id: name('Publisher-chosen id, unique within the topic.'),
    timestamp: {
      type: 'string',
      'x-event-timestamp': true,
      description:
        'ISO 8601 date and time, e.g. 2024-05-01T12:00:00.123Z, years 0001-9999. Without an offset it is UTC. Leap seconds (:60) and decimal commas are refused.',
    },
    source: name('Service or host that produced the event.'),
    payload: {
      type: 'object',
      description: 'Free-form JSON object (default {}).',
      additionalProperties: true,
    },
  },
  additionalProperties: true,
} as const;

export const storedEventSchema = {
  $id: 'StoredEvent',
  type: 'object',
  properties: {
    id: {
      type: 'integer',
      description: 'Position in the store; the id of the live stream (Last-Event-ID).',
    },
    topic: { type: 'string' },
    event_id: { type: 'string' },
    timestamp: { type: 'string', format: 'date-time' },
    source: { type: 'string' },
    payload: {
      type: 'object',
      additionalProperties: true,
      description:
        'As stored: every number with all its digits (never rounded to a double), in PostgreSQL jsonb normal form (keys ordered, `1e2` as `100`, `-0` as `0`).',
    },
    processed_at: { type: 'string', format: 'date-time', description: 'When it was stored.' },
  },
} as const;

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string', description: 'AGG_ERR_* code, listed in docs/errors.md' },
    error: { type: 'string' },
    message: { type: 'string' },
    details: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { type: 'string' }, reason: { type: 'string' } },
      },
    },
    detail: {
      type: 'array',
      description: 'The same problems in the shape of the system this one replaces (loc/msg/type).',
      items: {
        type: 'object',
        properties: {
          loc: { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
          msg: { type: 'string' },
          type: { type: 'string' },
        },
      },
    },
  },
} as const;

/** The envelope every publish body becomes (see publish-shapes.ts); the schema validated. */
export const publishEnvelopeSchema = {
  type: 'object',
  required: ['events'],
  properties: {
    events: { type: 'array', minItems: 1, items: eventSchema },
  },
} as const;

/** What POST /publish accepts, as the API description shows it. */
export const publishBodySchema = {
  description:
    'The envelope {"events": [Event, …]}, a bare Event, or a bare array of Events; as application/x-ndjson, one Event per line. Every shape is validated the same way; errors name the field in the shape sent (events[2].topic, [2].topic, topic, line 3: topic).',
  anyOf: [publishEnvelopeSchema, eventSchema, { type: 'array', minItems: 1, items: eventSchema }],
} as const;

export const publishQuerySchema = {
  type: 'object',
  properties: {
    atomic: {
      type: 'boolean',
      default: false,
      description: 'Store the events before answering, in one transaction, and report the counts.',
    },
    detail: {
      type: 'boolean',
      default: false,
      description:
        'With atomic=true: also answer, per event in order, stored / duplicate (with when the original was stored) / rejected.',
    },
  },
} as const;

/** What became of one event of a publish, by its position in the request. */
export const eventOutcomeProperties = {
  index: { type: 'integer' },
  outcome: { type: 'string', enum: ['stored', 'duplicate', 'rejected'] },
  conflict: {
    type: 'boolean',
    description: 'A duplicate whose timestamp, source or payload differ from the stored event.',
  },
} as const;

export const publishResponseSchema = {
  type: 'object',
  required: ['accepted', 'queued'],
  properties: {
    accepted: { type: 'integer', description: 'Events in the request.' },
    queued: { type: 'integer', description: 'Events queued for the workers (0 in atomic mode).' },
    processed: { type: 'integer', description: 'Atomic mode: events stored for the first time.' },
    duplicates: { type: 'integer', description: 'Atomic mode: events already stored.' },
    conflicts: {
      type: 'integer',
      description: 'Atomic mode: duplicates whose timestamp, source or payload differ.',
    },
    events: {
      type: 'array',
      description: 'Atomic mode with detail=true: what became of each event, in order.',
      items: {
        type: 'object',
        properties: {
          ...eventOutcomeProperties,
          original_processed_at: { type: 'string', format: 'date-time' },
        },
      },
    },
    message_id: { type: 'string', description: 'Queued mode: id of the queue message.' },
  },
} as const;
