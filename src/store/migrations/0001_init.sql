-- Events, counters, the redelivery ledger, the inbox queue and the dead letters.

CREATE TABLE events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic        text        NOT NULL,
  event_id     text        NOT NULL,
  "timestamp"  timestamptz NOT NULL,
  source       text        NOT NULL,
  payload      jsonb       NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_topic_event_id_key UNIQUE (topic, event_id)
);

CREATE INDEX events_topic_timestamp_idx ON events (topic, "timestamp" DESC, id DESC);

-- Counters per topic, split in shards so concurrent workers rarely wait on the same row.
-- The totals are the sums; they change only in the transaction that stores the events.
CREATE TABLE topic_counters (
  topic             text     NOT NULL,
  shard             smallint NOT NULL,
  received          bigint   NOT NULL DEFAULT 0,
  unique_processed  bigint   NOT NULL DEFAULT 0,
  duplicate_dropped bigint   NOT NULL DEFAULT 0,
  PRIMARY KEY (topic, shard)
);

-- Queue messages already applied. A message redelivered after a crash between commit and
-- acknowledgement finds its row here and is acknowledged without being applied again.
CREATE TABLE applied_messages (
  message_id text        PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX applied_messages_applied_at_idx ON applied_messages (applied_at);

-- The store-backed queue: one row per accepted publish request.
CREATE TABLE inbox (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  events      jsonb       NOT NULL,
  event_count integer     NOT NULL,
  enqueued_at timestamptz NOT NULL DEFAULT now()
);

-- Messages the database refused to store, kept with the reason for inspection.
CREATE TABLE dead_letters (
  message_id  text        PRIMARY KEY,
  events      text        NOT NULL,
  reason      text        NOT NULL,
  failed_at   timestamptz NOT NULL DEFAULT now()
);
