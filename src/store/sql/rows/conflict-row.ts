/** How a row of `conflicts` is selected and turned into a StoredConflict. */
import type { StoredConflict } from '../../store.js';
import { ISO_UTC } from '../sql-fragments.js';

export interface ConflictRow {
  id: number;
  topic: string;
  event_id: string;
  stored_hash: string;
  duplicate_hash: string;
  stored_timestamp: string | null;
  duplicate_timestamp: string;
  stored_source: string | null;
  duplicate_source: string;
  stored_payload: string | null;
  duplicate_payload: string;
  rejected: boolean;
  differs: ('timestamp' | 'source' | 'payload')[];
  detected_at: string;
}

/** The columns of a ConflictRow; hashes as decimal text (they are 64-bit). */
export const CONFLICT_COLUMNS = `id::float8 AS id, topic, event_id, stored_hash::text, duplicate_hash::text,
              ${ISO_UTC('stored_timestamp')} AS stored_timestamp,
              ${ISO_UTC('duplicate_timestamp')} AS duplicate_timestamp,
              stored_source, duplicate_source, stored_payload, duplicate_payload, rejected,
              differs, ${ISO_UTC('detected_at')} AS detected_at`;

export function toStoredConflict(r: ConflictRow): StoredConflict {
  return {
    id: r.id,
    topic: r.topic,
    eventId: r.event_id,
    stored: {
      hash: r.stored_hash,
      timestamp: r.stored_timestamp,
      source: r.stored_source,
      payloadStart: r.stored_payload,
    },
    duplicate: {
      hash: r.duplicate_hash,
      timestamp: r.duplicate_timestamp,
      source: r.duplicate_source,
      payloadStart: r.duplicate_payload,
    },
    rejected: r.rejected,
    differs: r.differs,
    detectedAt: r.detected_at,
  };
}
