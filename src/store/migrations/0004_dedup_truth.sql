-- Deduplication that tells the truth: a content hash per event to catch duplicates that differ
-- from the stored copy, payload retention apart from key retention, per-source dedup statistics,
-- and receipts of applied queue messages.

-- hashtextextended(jsonb_build_array(timestamp, source, payload)::text); 0 = stored before this
-- column existed (such originals never count as conflicting).
ALTER TABLE events ADD COLUMN content_hash bigint NOT NULL DEFAULT 0;
-- Set when retention removed the payload: the row stays as the key's memory (a tombstone).
ALTER TABLE events ADD COLUMN expired_at timestamptz;

-- Queries and payload retention only look at live rows; key retention only at tombstones.
DROP INDEX events_topic_timestamp_idx;
CREATE INDEX events_topic_timestamp_idx ON events (topic, "timestamp" DESC, id DESC)
  WHERE expired_at IS NULL;
CREATE INDEX events_tombstone_timestamp_idx ON events ("timestamp") WHERE expired_at IS NOT NULL;

ALTER TABLE topic_counters
  ADD COLUMN conflicting_duplicates bigint NOT NULL DEFAULT 0,
  ADD COLUMN rejected bigint NOT NULL DEFAULT 0,
  ADD COLUMN keys_expired bigint NOT NULL DEFAULT 0;

ALTER TABLE dead_letters ADD COLUMN event_count integer NOT NULL DEFAULT 0;

-- Duplicates whose timestamp, source or payload differ from the stored copy.
CREATE TABLE conflicts (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic               text        NOT NULL,
  event_id            text        NOT NULL,
  stored_hash         bigint      NOT NULL,
  duplicate_hash      bigint      NOT NULL,
  stored_timestamp    timestamptz,
  duplicate_timestamp timestamptz NOT NULL,
  stored_source       text,
  duplicate_source    text        NOT NULL,
  -- The first 200 characters of each payload as JSON text.
  stored_payload      text,
  duplicate_payload   text        NOT NULL,
  rejected            boolean     NOT NULL,
  -- Which of timestamp, source and payload differ.
  differs             text[]      NOT NULL,
  detected_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conflicts_topic_idx ON conflicts (topic, id DESC);

-- Duplicates whose stored copy was committed by a concurrent transaction, invisible to the one
-- that dropped them: compared with it shortly after by the workers' upkeep.
CREATE TABLE pending_conflict_checks (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic     text        NOT NULL,
  event_id  text        NOT NULL,
  hash      bigint      NOT NULL,
  ts        timestamptz NOT NULL,
  source    text        NOT NULL,
  payload   text        NOT NULL,
  rejected  boolean     NOT NULL,
  seen_at   timestamptz NOT NULL DEFAULT now()
);

-- Per topic and source (of the arriving copy), sharded like topic_counters.
CREATE TABLE dedup_stats (
  topic        text     NOT NULL,
  source       text     NOT NULL,
  shard        smallint NOT NULL,
  events       bigint   NOT NULL DEFAULT 0,
  unique_events bigint  NOT NULL DEFAULT 0,
  duplicates   bigint   NOT NULL DEFAULT 0,
  conflicts    bigint   NOT NULL DEFAULT 0,
  max_delay_ms double precision NOT NULL DEFAULT 0,
  PRIMARY KEY (topic, source, shard)
);

-- Delay between a stored event and a later copy, as a histogram: bucket b holds delays d (ms)
-- with floor(4 * log2(d + 1)) = b, so a median read from it is within 19%.
CREATE TABLE dedup_delays (
  topic  text     NOT NULL,
  source text     NOT NULL,
  shard  smallint NOT NULL,
  bucket smallint NOT NULL,
  n      bigint   NOT NULL DEFAULT 0,
  PRIMARY KEY (topic, source, bucket, shard)
);

-- What became of each applied queue message, one character per event in order: S stored,
-- D duplicate, C conflicting duplicate (dropped), R conflicting duplicate (rejected).
CREATE TABLE receipts (
  message_id text        PRIMARY KEY,
  outcomes   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipts_applied_at_idx ON receipts (applied_at);
