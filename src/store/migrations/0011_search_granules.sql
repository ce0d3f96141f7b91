-- Search granules (docs/search.md). The trigram and containment indexes over every event cost
-- about half of ingest; instead, for each run of up to 128 events of a message, the apply stores
-- one row here: the id range of the events it inserted, their event-time range, and the distinct
-- words of their sources and payloads (src/search/granule-words.ts). SEARCH_INDEX puts a trigram index on the words; a query for a
-- rare term finds the granules that can hold it and reads only their rows.
DROP INDEX IF EXISTS events_search_idx;
DROP INDEX IF EXISTS events_payload_idx;

CREATE TABLE event_granules (
  -- Every event the apply inserted has an id in [first_id, last_id] (other transactions' rows
  -- may lie in it too) and an event time in [min_ts, max_ts].
  first_id bigint      NOT NULL,
  last_id  bigint      NOT NULL,
  min_ts   timestamptz NOT NULL,
  max_ts   timestamptz NOT NULL,
  -- One word per line: every string value at any depth and the source, split at ASCII white
  -- space, and every number; a superset of what the rows hold is harmless, a word missing is not.
  words    text        NOT NULL
);
-- Retention forgets the granules of the event time it dropped (retention.ts).
CREATE INDEX event_granules_max_ts_idx ON event_granules (max_ts);

-- The words of one event, as src/search/granule-words.ts gathers them: its search text split at
-- ASCII white space, and its numbers in their stored decimal form (which holds the digits a
-- query's integer asks for). Written out in each query below rather than called as a function:
-- PostgreSQL does not inline a set-returning function of this shape, and calling it per row took
-- four times as long.
--
-- The words of a queue message's events (a JSON array), for a message queued without them.
CREATE FUNCTION event_granule_words_of(events jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT coalesce(string_agg(DISTINCT x.w, E'\n'), '')
  FROM jsonb_array_elements(coalesce(events, '[]'::jsonb)) AS e
  CROSS JOIN LATERAL (
    SELECT regexp_split_to_table(
             event_search_text(coalesce(e.value->'payload', '{}'::jsonb), e.value->>'source'),
             '[ \t\n\r\f\v]+') AS w
    UNION ALL
    SELECT jsonb_path_query(coalesce(e.value->'payload', '{}'::jsonb),
                            'strict $.** ? (@.type() == "number")') #>> '{}'
  ) AS x
  WHERE x.w <> ''
$$;

-- Granules for the rows stored before: one per `size` consecutive ids (128, as an apply cuts
-- its messages, granule-words.ts). A maintenance step: it
-- reads every stored row once (40 s per million events on two cores, measured on 200,000 rows in
-- granules of 1,000).
CREATE FUNCTION build_event_granules(size bigint) RETURNS bigint
LANGUAGE sql
AS $$
  WITH built AS (
    INSERT INTO event_granules (first_id, last_id, min_ts, max_ts, words)
    SELECT min(e.id), max(e.id), min(e."timestamp"), max(e."timestamp"),
           coalesce(string_agg(DISTINCT x.w, E'\n') FILTER (WHERE x.w <> ''), '')
    FROM events e
    LEFT JOIN LATERAL (
      SELECT regexp_split_to_table(event_search_text(e.payload, e.source), '[ \t\n\r\f\v]+') AS w
      UNION ALL
      SELECT jsonb_path_query(e.payload, 'strict $.** ? (@.type() == "number")') #>> '{}'
    ) AS x ON true
    GROUP BY e.id / size
    RETURNING 1
  )
  SELECT count(*) FROM built
$$;
SELECT build_event_granules(128);

-- The words of messages queued from now on, gathered where they are accepted.
-- A JSON array: the words of each run of 128 events (granule-words.ts).
ALTER TABLE inbox ADD COLUMN words jsonb;
