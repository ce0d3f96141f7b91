-- Storage that grows (issue 18). The dedup memory moves to a compact table of its own,
-- event_keys, the one place uniqueness is decided; events become payload rows partitioned by
-- event time, so retention drops whole partitions and every index stays per partition.
--
-- The old single table is rewritten here, in the migration's transaction: every row becomes a
-- key (tombstones included, so a late copy of an expired event is still a duplicate), and every
-- row with a payload becomes a row of the new events table, keeping its id. The rows land in the
-- DEFAULT partition; the start-up partition upkeep (partitions.ts) then creates the partitions
-- around now and moves the recent rows into them. This is a maintenance step: it reads and
-- writes the whole store once while the service waits (docs/storage.md).

ALTER TABLE events RENAME TO events_unpartitioned;
DROP INDEX IF EXISTS events_search_idx;
DROP INDEX IF EXISTS events_payload_idx;

CREATE TABLE event_keys (
  topic        text COLLATE "C" NOT NULL,
  event_id     text COLLATE "C" NOT NULL,
  -- As in 0004: 0 = stored before content hashes existed (never counts as conflicting).
  content_hash bigint      NOT NULL DEFAULT 0,
  -- Event time of the stored copy: where its payload row is (which partition), and when the key
  -- may be forgotten (KEY_RETENTION_DAYS).
  "timestamp"  timestamptz NOT NULL,
  -- When the first copy was stored (the payload row's processed_at).
  first_seen   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT event_keys_pkey PRIMARY KEY (topic, event_id)
);
CREATE INDEX event_keys_timestamp_idx ON event_keys ("timestamp");

INSERT INTO event_keys (topic, event_id, content_hash, "timestamp", first_seen)
SELECT topic, event_id, content_hash, "timestamp", processed_at FROM events_unpartitioned;

-- One sequence for every partition: ids stay unique and increasing across the whole table (the
-- live tail reads id ranges). Not an identity: PostgreSQL 15 has none on partitioned tables.
CREATE SEQUENCE event_ids AS bigint;
SELECT setval('event_ids', coalesce((SELECT max(id) FROM events_unpartitioned), 0) + 1, false);

CREATE TABLE events (
  id           bigint           NOT NULL DEFAULT nextval('event_ids'),
  topic        text COLLATE "C" NOT NULL,
  event_id     text COLLATE "C" NOT NULL,
  "timestamp"  timestamptz      NOT NULL,
  source       text             NOT NULL,
  payload      jsonb            NOT NULL,
  processed_at timestamptz      NOT NULL DEFAULT now()
) PARTITION BY RANGE ("timestamp");
ALTER SEQUENCE event_ids OWNED BY events.id;

-- Everything outside the created partitions: year 1, year 9999, late or far-future events, rows
-- written before the upkeep created their partition. Retention deletes from it row by row.
CREATE TABLE events_default PARTITION OF events DEFAULT;

INSERT INTO events (id, topic, event_id, "timestamp", source, payload, processed_at)
SELECT id, topic, event_id, "timestamp", source, payload, processed_at
FROM events_unpartitioned WHERE expired_at IS NULL;

-- The old table's expired payloads were counted as expired; its tombstones are now keys without
-- a payload row, so the equations of /stats/verify hold unchanged.
DROP TABLE events_unpartitioned;

-- Declared on the parent, created on every partition (now and when attached).
CREATE INDEX events_topic_timestamp_idx ON events (topic, "timestamp" DESC, id DESC);
CREATE INDEX events_timestamp_idx ON events ("timestamp" DESC, id DESC);
CREATE INDEX events_source_timestamp_idx ON events (source, "timestamp" DESC, id DESC);
CREATE INDEX events_topic_source_timestamp_idx
  ON events (topic, source, "timestamp" DESC, id DESC);
-- The live tail: id ranges (WHERE id BETWEEN) and what follows an id (id > $1 ORDER BY id).
CREATE INDEX events_id_idx ON events (id);

-- The stored copy of a key, looked up where its event time says (one partition), for the rare
-- conflicting duplicate. A function so that the apply statement, which calls it only for
-- conflicts, does not plan a read of every partition on every batch. STABLE: it sees the caller's
-- snapshot, never rows the calling statement is inserting.
CREATE FUNCTION event_stored_copy(k_topic text, k_event_id text, k_ts timestamptz)
RETURNS TABLE (source text, payload jsonb)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
  RETURN QUERY
    SELECT e.source, e.payload FROM events e
    WHERE e.topic = k_topic AND e."timestamp" = k_ts AND e.event_id = k_event_id
    LIMIT 1;
END
$$;
