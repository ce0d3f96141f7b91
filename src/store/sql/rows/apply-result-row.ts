/** The summary row every apply statement answers, as an ApplyResult. */
import type { ApplyResult } from '../../store.js';

export interface ApplyRow {
  messages: number;
  received: number;
  inserted: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
  /** Inbox applies only (inbox.ts): the claimed messages' traceparents, null for none. */
  traceparents?: string[] | null;
}

/** The result of an apply statement; no row (nothing applied) is all zeros. */
export function toResult(row: ApplyRow | undefined): ApplyResult {
  return {
    messages: row?.messages ?? 0,
    received: row?.received ?? 0,
    inserted: row?.inserted ?? 0,
    duplicates: row?.duplicates ?? 0,
    conflicts: row?.conflicts ?? 0,
    rejected: row?.rejected ?? 0,
    ...(row?.traceparents ? { traceparents: row.traceparents } : {}),
  };
}
