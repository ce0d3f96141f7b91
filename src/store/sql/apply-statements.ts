/**
 * The apply statements: how queue messages (or an atomic publish) become stored events, counters,
 * conflicts and receipts. Shared by both stores and by the inbox (see inbox.ts).
 *
 * Applying is one statement, hence one transaction and one round trip per batch: the ledger
 * insert, the unpacking of the JSON messages, the in-batch dedupe, the sorted
 * `INSERT … ON CONFLICT DO NOTHING` and the counter update are CTEs of a single query. Keys are
 * inserted in one global order (topic, event_id) because concurrent batches that take
 * overlapping keys in different orders deadlock; conflicts that still happen are retried.
 */
import { GRANULE_EVENTS } from '../../search/granule-words.js';
import { differs, ISO_UTC } from './sql-fragments.js';
import type { Statement } from './statement.js';

/**
 * Channel on which every transaction that stores events announces, at commit, the range of ids
 * it inserted (`min-max`). Other rows may lie in that range; each row is announced by its own
 * transaction's range.
 */
export const INSERTED_CHANNEL = 'agg_events_inserted';

/**
 * The CTEs of every apply statement after the messages are known. They expect a CTE
 * `claimed(ord, events, message_id, words)` (one row per message, `events` a JSON array,
 * `message_id` null for an atomic publish, `words` a JSON array of the words of each
 * GRANULE_EVENTS events for their search granules, granule-words.ts, or null to gather them
 * here), `$2` = counter shard and `$3` = whether
 * conflicting duplicates are rejected (DUPLICATE_POLICY=reject-conflicts).
 *
 * `outcome` says what became of each event: S stored, D duplicate of the stored copy, C a
 * duplicate whose timestamp, source or payload differ (a conflict, dropped), R a conflict
 * rejected. A duplicate whose stored copy a concurrent transaction committed is invisible here;
 * it counts as a duplicate and is compared later (pending_conflict_checks).
 */
export const APPLY_CTES = `
input AS (
  SELECT (e.value->>'topic') COLLATE "C" AS topic,
         (e.value->>'event_id') COLLATE "C" AS event_id,
         (e.value->>'timestamp')::timestamptz AS ts,
         e.value->>'source' AS source,
         coalesce(e.value->'payload', '{}'::jsonb) AS payload,
         c.ord AS mord,
         e.ord AS eord,
         c.message_id
  FROM claimed c
  CROSS JOIN LATERAL jsonb_array_elements(c.events) WITH ORDINALITY AS e(value, ord)
),
-- The content hash chains the instant, the source and the payload as a JSON value (key order and
-- spacing do not matter); 0 is kept for rows stored before hashes existed.
hashed AS (
  SELECT i.*,
         jsonb_hash_extended(
           i.payload,
           hashtextextended(i.source, (extract(epoch FROM i.ts) * 1000000)::bigint)
         ) AS hash
  FROM input i
),
firsts AS (
  SELECT DISTINCT ON (topic, event_id) topic, event_id, ts, source, payload, hash, mord, eord
  FROM hashed
  ORDER BY topic, event_id, mord, eord
),
-- The keys decide: a key inserted here is a stored event, a key already there a duplicate.
keyed AS (
  INSERT INTO event_keys (topic, event_id, content_hash, "timestamp")
  SELECT topic, event_id, hash, ts FROM firsts
  ORDER BY topic, event_id
  ON CONFLICT (topic, event_id) DO NOTHING
  RETURNING topic, event_id
),
-- The payload rows of the keys inserted, each into its event-time partition (or the default), in
-- the order of the messages and their events: each run of them gets ids close together, so its
-- search granule (below) covers few other rows. (No unique index here: no order to deadlock on.)
inserted AS (
  INSERT INTO events (topic, event_id, "timestamp", source, payload)
  SELECT f.topic, f.event_id, f.ts, f.source, f.payload
  FROM firsts f JOIN keyed k USING (topic, event_id)
  ORDER BY f.mord, f.eord
  RETURNING id, "timestamp", topic, event_id
),
-- The stored key of each key this statement did not insert: one lookup per key, not per copy.
-- (LIMIT keeps it an index lookup per key: as a join the planner might scan the whole table.)
originals AS (
  SELECT f.topic, f.event_id, x.content_hash, x.first_seen, x."timestamp" AS stored_ts
  FROM firsts f
  CROSS JOIN LATERAL (
    SELECT k.content_hash, k.first_seen, k."timestamp"
    FROM event_keys k WHERE k.topic = f.topic AND k.event_id = f.event_id LIMIT 1
  ) x
  WHERE NOT EXISTS (
    SELECT 1 FROM keyed n WHERE n.topic = f.topic AND n.event_id = f.event_id
  )
),
-- Only what every row needs; the payloads of the rare conflicts are fetched in \`conflicted\`.
compared AS (
  SELECT h.topic, h.event_id, h.source, h.hash, h.mord, h.eord, h.message_id,
         n.topic IS NOT NULL AND f.mord = h.mord AND f.eord = h.eord AS stored,
         CASE WHEN n.topic IS NOT NULL THEN f.hash ELSE o.content_hash END AS first_hash,
         CASE WHEN n.topic IS NOT NULL THEN now() ELSE o.first_seen END AS first_at,
         o.stored_ts
  FROM hashed h
  JOIN firsts f USING (topic, event_id)
  LEFT JOIN keyed n USING (topic, event_id)
  LEFT JOIN originals o USING (topic, event_id)
),
outcome AS (
  SELECT c.*,
         CASE
           WHEN c.stored THEN 'S'
           WHEN c.first_hash IS NULL OR c.first_hash = 0 OR c.first_hash = c.hash THEN 'D'
           WHEN $3::boolean THEN 'R'
           ELSE 'C'
         END AS kind
  FROM compared c
),
-- A stored copy is either inserted by this statement (its values are in firsts) or found in
-- the partition of its key's event time; without a payload row (retention removed it) only its
-- timestamp is known, and only the timestamp is compared.
conflicted AS (
  INSERT INTO conflicts (topic, event_id, stored_hash, duplicate_hash, stored_timestamp,
                         duplicate_timestamp, stored_source, duplicate_source, stored_payload,
                         duplicate_payload, rejected, differs)
  SELECT o.topic, o.event_id, o.first_hash, o.hash,
         coalesce(o.stored_ts, f.ts), h.ts, s.source, h.source,
         left(s.payload::text, 200), left(h.payload::text, 200), o.kind = 'R',
         ${differs(
           'coalesce(o.stored_ts, f.ts)',
           'h.ts',
           's.source',
           'h.source',
           's.payload <> h.payload',
         )}
  FROM outcome o
  JOIN hashed h ON h.mord = o.mord AND h.eord = o.eord
  JOIN firsts f ON f.topic = o.topic AND f.event_id = o.event_id
  LEFT JOIN LATERAL (
    SELECT f.source, f.payload WHERE o.stored_ts IS NULL
    UNION ALL
    SELECT c.source, c.payload FROM event_stored_copy(o.topic, o.event_id, o.stored_ts) c
    WHERE o.stored_ts IS NOT NULL
  ) s ON true
  WHERE o.kind IN ('C', 'R')
  ORDER BY o.mord, o.eord
),
unresolved AS (
  INSERT INTO pending_conflict_checks (topic, event_id, hash, ts, source, payload, rejected,
                                       message_id, position)
  SELECT o.topic, o.event_id, o.hash, h.ts, o.source, left(h.payload::text, 200), $3::boolean,
         o.message_id, o.eord
  FROM outcome o JOIN hashed h ON h.mord = o.mord AND h.eord = o.eord
  WHERE NOT o.stored AND o.first_hash IS NULL
),
-- One pass groups the outcomes by topic and source; the topic counters sum those groups.
by_source AS (
  SELECT topic, source,
         count(*) AS received,
         count(*) FILTER (WHERE kind = 'S') AS stored,
         count(*) FILTER (WHERE kind IN ('D', 'C')) AS duplicates,
         count(*) FILTER (WHERE kind IN ('C', 'R')) AS conflicts,
         count(*) FILTER (WHERE kind = 'R') AS rejected,
         -- A copy can be dropped by a transaction that started before the stored copy's did: 0.
         coalesce(max(greatest(extract(epoch FROM now() - first_at)::float8 * 1000, 0))
                  FILTER (WHERE kind <> 'S'), 0) AS max_delay_ms
  FROM outcome GROUP BY topic, source
),
counted AS (
  INSERT INTO topic_counters AS tc (topic, shard, received, unique_processed, duplicate_dropped,
                                    conflicting_duplicates, rejected)
  SELECT topic, $2::smallint, sum(received), sum(stored), sum(duplicates), sum(conflicts),
         sum(rejected)
  FROM by_source
  GROUP BY topic
  ORDER BY topic
  ON CONFLICT (topic, shard) DO UPDATE SET
    received = tc.received + excluded.received,
    unique_processed = tc.unique_processed + excluded.unique_processed,
    duplicate_dropped = tc.duplicate_dropped + excluded.duplicate_dropped,
    conflicting_duplicates = tc.conflicting_duplicates + excluded.conflicting_duplicates,
    rejected = tc.rejected + excluded.rejected
),
sourced AS (
  INSERT INTO dedup_stats AS ds (topic, source, shard, events, unique_events, duplicates,
                                 conflicts, max_delay_ms)
  SELECT topic, source, $2::smallint, received, stored, duplicates + rejected, conflicts,
         max_delay_ms
  FROM by_source
  ORDER BY topic, source
  ON CONFLICT (topic, source, shard) DO UPDATE SET
    events = ds.events + excluded.events,
    unique_events = ds.unique_events + excluded.unique_events,
    duplicates = ds.duplicates + excluded.duplicates,
    conflicts = ds.conflicts + excluded.conflicts,
    max_delay_ms = greatest(ds.max_delay_ms, excluded.max_delay_ms)
),
delayed AS (
  INSERT INTO dedup_delays AS dd (topic, source, shard, bucket, n)
  SELECT topic, source, $2::smallint,
         floor(4 * ln(greatest(extract(epoch FROM now() - first_at)::float8 * 1000, 0) + 1)
               / ln(2))::smallint AS bucket,
         count(*)
  FROM outcome WHERE kind <> 'S' AND first_at IS NOT NULL
  GROUP BY 1, 2, 4
  ORDER BY 1, 2, 4
  ON CONFLICT (topic, source, bucket, shard) DO UPDATE SET n = dd.n + excluded.n
),
receipted AS (
  INSERT INTO receipts (message_id, outcomes)
  SELECT message_id, string_agg(kind, '' ORDER BY eord)
  FROM outcome WHERE message_id IS NOT NULL
  GROUP BY message_id
  ON CONFLICT (message_id) DO NOTHING
),
-- The search granules of the rows inserted (migration 0011), one per message and run of
-- ${GRANULE_EVENTS} events: their id and time ranges and the words of the run (duplicates' words too: a
-- superset does no harm; a message without words, the words of all its events).
chunks AS (
  SELECT f.mord, (f.eord - 1) / ${GRANULE_EVENTS} AS chunk, min(i.id) AS first_id,
         max(i.id) AS last_id, min(i."timestamp") AS min_ts, max(i."timestamp") AS max_ts
  FROM inserted i JOIN firsts f USING (topic, event_id)
  GROUP BY 1, 2
),
granuled AS (
  INSERT INTO event_granules (first_id, last_id, min_ts, max_ts, words)
  SELECT k.first_id, k.last_id, k.min_ts, k.max_ts,
         (SELECT coalesce(c.words->>k.chunk::int, event_granule_words_of(c.events))
          FROM claimed c WHERE c.ord = k.mord)
  FROM chunks k
)`;

/** The summary every apply statement ends with: one pass over the outcomes. */
export const APPLY_SUMMARY = `
SELECT (SELECT count(*) FROM claimed)::float8 AS messages,
       count(*)::float8 AS received,
       count(*) FILTER (WHERE kind = 'S')::float8 AS inserted,
       count(*) FILTER (WHERE kind IN ('D', 'C'))::float8 AS duplicates,
       count(*) FILTER (WHERE kind IN ('C', 'R'))::float8 AS conflicts,
       count(*) FILTER (WHERE kind = 'R')::float8 AS rejected,
       (SELECT pg_notify('${INSERTED_CHANNEL}', min(id) || '-' || max(id))
        FROM inserted HAVING count(*) > 0) IS NOT NULL AS notified
FROM outcome`;

/** $1: JSON array of {id, body, words}. Messages already in the ledger are left out. */
export const APPLY_BATCHES: Statement = {
  name: 'agg_apply_batches',
  text: `
WITH msgs AS (
  SELECT (m.value->>'id') COLLATE "C" AS message_id, m.value->'body'->'events' AS events, m.ord,
         m.value->'words' AS words
  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS m(value, ord)
),
fresh AS (
  INSERT INTO applied_messages (message_id)
  SELECT message_id FROM msgs ORDER BY message_id
  ON CONFLICT (message_id) DO NOTHING
  RETURNING message_id
),
-- The same message twice in one call is applied once.
claimed AS (
  SELECT DISTINCT ON (message_id) msgs.ord, msgs.events, message_id, msgs.words
  FROM msgs JOIN fresh USING (message_id)
  ORDER BY message_id, msgs.ord
),
${APPLY_CTES}
${APPLY_SUMMARY}`,
};

/**
 * $1: a request body with its words (granule-words.ts withWords) as UTF-8 bytes, applied as one
 * message without a ledger row.
 */
const APPLY_ACCEPTED_CTE = `
WITH request AS (SELECT convert_from($1::bytea, 'UTF8')::jsonb AS value),
claimed AS (
  SELECT 1::bigint AS ord, value->'body'->'events' AS events, NULL::text AS message_id,
         value->'words' AS words
  FROM request
),
${APPLY_CTES}`;
/**
 * One row per event, in order, with what became of it: for DUPLICATE_POLICY=reject-conflicts,
 * whose requests are applied one transaction each (the others go in groups, below).
 */
export const APPLY_ACCEPTED_DETAIL: Statement = {
  name: 'agg_apply_accepted_detail',
  text: `${APPLY_ACCEPTED_CTE},
summary AS (${APPLY_SUMMARY})
SELECT o.eord::float8 AS index, o.kind, ${ISO_UTC('o.first_at')} AS first_at,
       (SELECT notified FROM summary) AS notified
FROM outcome o ORDER BY o.eord`,
};

/**
 * Several atomic publishes in one statement (apply-groups.ts): $1 is the JSON array of their
 * request bodies with their words (granule-words.ts withWords), as UTF-8 bytes. A request's position in the array (from 1) is its `request`;
 * one row per event, by request then position, with what became of it. Within the statement
 * the earlier request's copy of a key is the first, as if the requests had been applied in turn.
 */
export const APPLY_ACCEPTED_GROUP: Statement = {
  name: 'agg_apply_accepted_group',
  text: `
WITH claimed AS (
  SELECT b.ord, b.value->'body'->'events' AS events, NULL::text AS message_id,
         b.value->'words' AS words
  FROM jsonb_array_elements(convert_from($1::bytea, 'UTF8')::jsonb) WITH ORDINALITY AS b(value, ord)
),
${APPLY_CTES},
summary AS (${APPLY_SUMMARY})
SELECT o.mord::float8 AS request, o.eord::float8 AS index, o.kind,
       ${ISO_UTC('o.first_at')} AS first_at, (SELECT notified FROM summary) AS notified
FROM outcome o ORDER BY o.mord, o.eord`,
};
