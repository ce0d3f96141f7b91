/** How a row of `dead_letters` becomes a StoredDeadLetter. */
import type { StoredDeadLetter } from '../../store.js';

export interface DeadLetterRow {
  message_id: string;
  events: string;
  reason: string;
  failed_at: string;
  event_count: number;
}

export function toStoredDeadLetter(r: DeadLetterRow): StoredDeadLetter {
  return {
    messageId: r.message_id,
    body: r.events,
    reason: r.reason,
    eventCount: r.event_count,
    failedAt: r.failed_at,
  };
}
