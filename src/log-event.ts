/** The domain record: one log event as publishers send it and as the store returns it. */

export interface LogEvent {
  readonly topic: string;
  readonly event_id: string;
  /** ISO 8601 with an explicit offset; the API adds `Z` to a timestamp that has none. */
  readonly timestamp: string;
  readonly source: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

export interface StoredEvent extends LogEvent {
  /** When the event was first stored. */
  readonly processed_at: string;
}
