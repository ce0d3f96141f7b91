/** The domain record: one log event as publishers send it and as the store returns it. */

export interface LogEvent {
  readonly topic: string;
  readonly event_id: string;
  /** ISO 8601 with an explicit offset; the API adds `Z` to a timestamp that has none. */
  readonly timestamp: string;
  readonly source: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

/**
 * A publish request as accepted: its JSON body, an object whose `events` member is the array of
 * events, kept as the bytes that arrived. It has been validated; it is never parsed and serialised
 * again on the hot path, the database reads the events straight from it.
 */
export interface AcceptedBatch {
  readonly body: Buffer | string;
  readonly eventCount: number;
  /** The first event's topic, when known: a sharded queue routes by it. */
  readonly topic?: string | undefined;
  /** The W3C traceparent of the publish span, carried in the queue message (tracing.ts). */
  readonly traceparent?: string | undefined;
}

/**
 * A stored event as read back. Its payload stays the JSON text the database holds (jsonb's text
 * form), never parsed: numbers keep every digit they were stored with (see stored-event-json.ts).
 */
export interface StoredEvent extends Omit<LogEvent, 'payload'> {
  /** Position in the store: unique, growing with insertion (not strictly with commit order). */
  readonly id: number;
  /** The payload as JSON text, exactly as the store renders it. */
  readonly payloadJson: string;
  /** When the event was first stored. */
  readonly processed_at: string;
}
