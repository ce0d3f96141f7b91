/** How a per-topic sum of `topic_counters` becomes a TopicSummary. */
import type { TopicSummary } from '../../store.js';

export interface TopicSummaryRow {
  topic: string;
  received: number;
  unique_processed: number;
  duplicate_dropped: number;
  conflicting_duplicates: number;
  rejected: number;
  expired: number;
  last_event_at: string | null;
}

export function toTopicSummary(r: TopicSummaryRow): TopicSummary {
  return {
    topic: r.topic,
    received: r.received,
    uniqueProcessed: r.unique_processed,
    duplicateDropped: r.duplicate_dropped,
    conflictingDuplicates: r.conflicting_duplicates,
    rejected: r.rejected,
    expired: r.expired,
    lastEventAt: r.last_event_at ?? undefined,
  };
}
