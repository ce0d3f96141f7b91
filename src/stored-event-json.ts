/**
 * Stored events as JSON text for every output (GET /events, the live stream): the payload is the
 * store's own JSON text spliced in as it is, never parsed, so a number comes back with the digits
 * it was stored with (a 64-bit id, a decimal longer than a double holds). Only the short string
 * fields are serialised here.
 */
import type { StoredEvent } from './log-event.js';

/**
 * One StoredEvent as a JSON object, members in the order the OpenAPI schema lists them:
 * `{"id", "topic", "event_id", "timestamp", "source", "payload", "processed_at"}`. `payload` is
 * always followed by `processed_at`, the last member (the dashboard relies on it to cut the
 * payload's text out of a frame without parsing it).
 */
export function storedEventJson(e: StoredEvent): string {
  return (
    `{"id":${e.id},"topic":${JSON.stringify(e.topic)},"event_id":${JSON.stringify(e.event_id)}` +
    `,"timestamp":${JSON.stringify(e.timestamp)},"source":${JSON.stringify(e.source)}` +
    `,"payload":${e.payloadJson},"processed_at":${JSON.stringify(e.processed_at)}}`
  );
}

/** A JSON array of stored events, built as one string per response. */
export function storedEventsJson(events: readonly StoredEvent[]): string {
  let out = '[';
  for (let i = 0; i < events.length; i++) {
    if (i > 0) out += ',';
    out += storedEventJson(events[i] as StoredEvent);
  }
  return `${out}]`;
}
