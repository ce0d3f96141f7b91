/** How a row of `events` is selected and turned into a StoredEvent. */
import type { StoredEvent } from '../../../log-event.js';
import { ISO_UTC } from '../sql-fragments.js';

export interface EventRow {
  id: number;
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
  /** jsonb's text form: parsing it into doubles would round big or long numbers. */
  payload: string;
  processed_at: string;
}

/**
 * The columns of a StoredEvent. Timestamps are formatted by the database (UTC, microseconds):
 * driver Date parsing loses the microseconds, and PGlite's misreads years before 100. The payload
 * is selected as text, so the driver does not parse it into JavaScript numbers.
 */
export const EVENT_COLUMNS = `id::float8 AS id, topic, event_id, ${ISO_UTC('"timestamp"')} AS "timestamp",
  source, payload::text AS payload, ${ISO_UTC('processed_at')} AS processed_at`;

export function toStoredEvent(r: EventRow): StoredEvent {
  return {
    id: r.id,
    topic: r.topic,
    event_id: r.event_id,
    timestamp: r.timestamp,
    source: r.source,
    payloadJson: r.payload,
    processed_at: r.processed_at,
  };
}
