/**
 * The Store over PostgreSQL SQL. Both backends use this class: PostgreSQL through a `pg` pool and
 * PGlite in-process; only the SqlDriver differs.
 *
 * Applying is one statement, hence one transaction and one round trip per batch: the ledger
 * insert, the unpacking of the JSON messages, the in-batch dedupe, the sorted
 * `INSERT … ON CONFLICT DO NOTHING` and the counter update are CTEs of a single query. Keys are
 * inserted in one global order (topic, event_id) because concurrent batches that take
 * overlapping keys in different orders deadlock; conflicts that still happen are retried.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AcceptedBatch, StoredEvent } from '../../log-event.js';
import { ConflictRejectedError } from '../../errors.js';
import type { SqlDriver } from '../sql-driver.js';
import { SqlConflictError } from '../sql-errors.js';
import {
  summariseOutcomes,
  type ApplyResult,
  type AtomicResult,
  type Counters,
  type DeadLetter,
  type DedupStats,
  type DuplicatePolicy,
  type EventOutcome,
  type EventQuery,
  type Inbox,
  type InsertWatcher,
  type QueuedBatch,
  type Store,
  type StoredConflict,
  type StoredDeadLetter,
  type TopicSummary,
  type VerifyCheck,
} from '../store.js';

/** SQL rendering a timestamptz column as ISO 8601 UTC with microseconds. */
const ISO_UTC = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Channel on which every transaction that stores events announces, at commit, the range of ids
 * it inserted (`min-max`). Other rows may lie in that range; each row is announced by its own
 * transaction's range.
 */
export const INSERTED_CHANNEL = 'agg_events_inserted';

/**
 * SQL naming which of timestamp, source and payload differ between a stored event and a copy. A
 * payload is compared only when `payloadDiffers` can tell (not for a stored payload retention
 * removed): when neither of the others differs, the hashes say it is the payload.
 */
const differs = (
  storedTs: string,
  copyTs: string,
  storedSource: string,
  copySource: string,
  payloadDiffers: string,
) => `array_remove(ARRAY[
    CASE WHEN ${storedTs} IS DISTINCT FROM ${copyTs} THEN 'timestamp' END,
    CASE WHEN ${storedSource} IS DISTINCT FROM ${copySource} THEN 'source' END,
    CASE WHEN coalesce(${payloadDiffers},
                       ${storedTs} IS NOT DISTINCT FROM ${copyTs}
                       AND ${storedSource} IS NOT DISTINCT FROM ${copySource})
         THEN 'payload' END
  ], NULL)`;

/**
 * The CTEs of every apply statement after the messages are known. They expect a CTE
 * `claimed(ord, events, message_id)` (one row per message, `events` a JSON array, `message_id`
 * null for an atomic publish), `$2` = counter shard and `$3` = whether conflicting duplicates
 * are rejected (DUPLICATE_POLICY=reject-conflicts).
 *
 * `outcome` says what became of each event: S stored, D duplicate of the stored copy, C a
 * duplicate whose timestamp, source or payload differ (a conflict, dropped), R a conflict
 * rejected. A duplicate whose stored copy a concurrent transaction committed is invisible here;
 * it counts as a duplicate and is compared later (pending_conflict_checks).
 */
const APPLY_CTES = `
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
inserted AS (
  INSERT INTO events (topic, event_id, "timestamp", source, payload, content_hash)
  SELECT topic, event_id, ts, source, payload, hash FROM firsts
  ORDER BY topic, event_id
  ON CONFLICT (topic, event_id) DO NOTHING
  RETURNING id, topic, event_id
),
-- The stored copy of each key this statement did not insert: one lookup per key, not per copy.
-- (LIMIT keeps it an index lookup per key: as a join the planner might scan the whole table.)
originals AS (
  SELECT f.topic, f.event_id, x.id, x.content_hash, x.processed_at
  FROM firsts f
  CROSS JOIN LATERAL (
    SELECT e.id, e.content_hash, e.processed_at
    FROM events e WHERE e.topic = f.topic AND e.event_id = f.event_id LIMIT 1
  ) x
  WHERE NOT EXISTS (
    SELECT 1 FROM inserted n WHERE n.topic = f.topic AND n.event_id = f.event_id
  )
),
-- Only what every row needs; the payloads of the rare conflicts are fetched in \`conflicted\`.
compared AS (
  SELECT h.topic, h.event_id, h.source, h.hash, h.mord, h.eord, h.message_id,
         n.id IS NOT NULL AND f.mord = h.mord AND f.eord = h.eord AS stored,
         CASE WHEN n.id IS NOT NULL THEN f.hash ELSE o.content_hash END AS first_hash,
         CASE WHEN n.id IS NOT NULL THEN now() ELSE o.processed_at END AS first_at,
         o.id AS original_id
  FROM hashed h
  JOIN firsts f USING (topic, event_id)
  LEFT JOIN inserted n USING (topic, event_id)
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
conflicted AS (
  INSERT INTO conflicts (topic, event_id, stored_hash, duplicate_hash, stored_timestamp,
                         duplicate_timestamp, stored_source, duplicate_source, stored_payload,
                         duplicate_payload, rejected, differs)
  SELECT o.topic, o.event_id, o.first_hash, o.hash,
         coalesce(e."timestamp", f.ts), h.ts, coalesce(e.source, f.source), h.source,
         left(coalesce(e.payload, f.payload)::text, 200), left(h.payload::text, 200), o.kind = 'R',
         ${differs(
           'coalesce(e."timestamp", f.ts)',
           'h.ts',
           'coalesce(e.source, f.source)',
           'h.source',
           'CASE WHEN e.expired_at IS NULL THEN coalesce(e.payload, f.payload) <> h.payload END',
         )}
  FROM outcome o
  JOIN hashed h ON h.mord = o.mord AND h.eord = o.eord
  JOIN firsts f ON f.topic = o.topic AND f.event_id = o.event_id
  LEFT JOIN events e ON e.id = o.original_id
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
)`;

/** The summary every apply statement ends with: one pass over the outcomes. */
const APPLY_SUMMARY = `
SELECT (SELECT count(*) FROM claimed)::float8 AS messages,
       count(*)::float8 AS received,
       count(*) FILTER (WHERE kind = 'S')::float8 AS inserted,
       count(*) FILTER (WHERE kind IN ('D', 'C'))::float8 AS duplicates,
       count(*) FILTER (WHERE kind IN ('C', 'R'))::float8 AS conflicts,
       count(*) FILTER (WHERE kind = 'R')::float8 AS rejected,
       (SELECT pg_notify('${INSERTED_CHANNEL}', min(id) || '-' || max(id))
        FROM inserted HAVING count(*) > 0) IS NOT NULL AS notified
FROM outcome`;

/** $1: JSON array of {id, body}. Messages already in the ledger are left out. */
const APPLY_BATCHES_SQL = `
WITH msgs AS (
  SELECT (m.value->>'id') COLLATE "C" AS message_id, m.value->'body'->'events' AS events, m.ord
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
  SELECT DISTINCT ON (message_id) msgs.ord, msgs.events, message_id
  FROM msgs JOIN fresh USING (message_id)
  ORDER BY message_id, msgs.ord
),
${APPLY_CTES}
${APPLY_SUMMARY}`;

/** $1: a request body as UTF-8 bytes, applied as one message without a ledger row. */
const APPLY_ACCEPTED_CTE = `
WITH claimed AS (
  SELECT 1::bigint AS ord, convert_from($1::bytea, 'UTF8')::jsonb->'events' AS events,
         NULL::text AS message_id
),
${APPLY_CTES}`;
const APPLY_ACCEPTED_SQL = `${APPLY_ACCEPTED_CTE}
${APPLY_SUMMARY}`;
/** The same, answering one row per event, in order, with what became of it. */
const APPLY_ACCEPTED_DETAIL_SQL = `${APPLY_ACCEPTED_CTE},
summary AS (${APPLY_SUMMARY})
SELECT o.eord::float8 AS index, o.kind, ${ISO_UTC('o.first_at')} AS first_at,
       (SELECT notified FROM summary) AS notified
FROM outcome o ORDER BY o.eord`;

/** $1: how many inbox messages to claim. Rows other workers hold are skipped, not waited for. */
const APPLY_INBOX_SQL = `
WITH claimed AS (
  DELETE FROM inbox
  WHERE id IN (SELECT id FROM inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING id AS ord, events, ('inbox-' || id) COLLATE "C" AS message_id
),
${APPLY_CTES}
${APPLY_SUMMARY}`;

/** $1: the id of one inbox message. */
const APPLY_INBOX_ONE_SQL = `
WITH claimed AS (
  DELETE FROM inbox WHERE id = $1::bigint RETURNING id AS ord, events, ('inbox-' || id) COLLATE "C" AS message_id
),
${APPLY_CTES}
${APPLY_SUMMARY}`;

const ZERO_COUNTS = {
  received: 0,
  unique_processed: 0,
  duplicate_dropped: 0,
  conflicting_duplicates: 0,
  rejected: 0,
  expired: 0,
  keys_expired: 0,
};

type CounterRow = typeof ZERO_COUNTS & { topic: string };

const COUNTER_SUMS = Object.keys(ZERO_COUNTS)
  .map((c) => `sum(${c})::float8 AS ${c}`)
  .join(', ');

/**
 * $1: how many pending checks to settle. Each duplicate whose stored copy was invisible when it
 * was dropped is compared with that copy now; a difference is recorded and counted as a conflict
 * (and, if the policy then was to reject, moved from duplicate_dropped to rejected).
 */
const RESOLVE_PENDING_SQL = `
WITH checked AS (
  DELETE FROM pending_conflict_checks
  WHERE id IN (SELECT id FROM pending_conflict_checks ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING *
),
found AS (
  SELECT c.*, e.content_hash AS stored_hash, e."timestamp" AS stored_ts, e.source AS stored_source,
         left(e.payload::text, 200) AS stored_payload
  FROM checked c JOIN events e USING (topic, event_id)
  WHERE e.content_hash <> 0 AND e.content_hash <> c.hash
),
recorded AS (
  INSERT INTO conflicts (topic, event_id, stored_hash, duplicate_hash, stored_timestamp,
                         duplicate_timestamp, stored_source, duplicate_source, stored_payload,
                         duplicate_payload, rejected, differs, detected_at)
  SELECT topic, event_id, stored_hash, hash, stored_ts, ts, stored_source, source, stored_payload,
         payload, rejected, ${differs('stored_ts', 'ts', 'stored_source', 'source', 'NULL::boolean')},
         seen_at
  FROM found ORDER BY id
),
by_topic AS (
  SELECT topic, count(*) AS n, count(*) FILTER (WHERE rejected) AS r FROM found GROUP BY topic
),
counted AS (
  INSERT INTO topic_counters AS tc (topic, shard, conflicting_duplicates, duplicate_dropped, rejected)
  SELECT topic, -2, n, -r, r FROM by_topic ORDER BY topic
  ON CONFLICT (topic, shard) DO UPDATE SET
    conflicting_duplicates = tc.conflicting_duplicates + excluded.conflicting_duplicates,
    duplicate_dropped = tc.duplicate_dropped + excluded.duplicate_dropped,
    rejected = tc.rejected + excluded.rejected
),
by_source AS (SELECT topic, source, count(*) AS n FROM found GROUP BY topic, source),
sourced AS (
  INSERT INTO dedup_stats AS ds (topic, source, shard, conflicts)
  SELECT topic, source, -2, n FROM by_source ORDER BY topic, source
  ON CONFLICT (topic, source, shard) DO UPDATE SET conflicts = ds.conflicts + excluded.conflicts
),
-- The receipt's letter for each such event becomes C (or R) instead of D.
receipted AS (
  UPDATE receipts r
  SET outcomes = (
    SELECT string_agg(coalesce(l.letter, x.letter), '' ORDER BY x.position)
    FROM unnest(string_to_array(r.outcomes, NULL)) WITH ORDINALITY AS x(letter, position)
    LEFT JOIN (
      SELECT f.position, CASE WHEN f.rejected THEN 'R' ELSE 'C' END AS letter
      FROM found f WHERE f.message_id = r.message_id
    ) l ON l.position = x.position
  )
  WHERE r.message_id IN (SELECT message_id FROM found)
)
SELECT (SELECT count(*) FROM found)::float8 AS n`;

/** Everything /stats/verify compares, read in one snapshot. */
const VERIFY_SQL = `
SELECT ${COUNTER_SUMS.replace(/sum\((\w+)\)/g, 'coalesce(sum($1), 0)')},
  (SELECT count(*) FROM events)::float8 AS event_rows,
  (SELECT count(*) FROM events WHERE expired_at IS NOT NULL)::float8 AS tombstones,
  (SELECT count(*) FROM conflicts)::float8 AS conflict_rows,
  (SELECT coalesce(sum(events), 0) FROM dedup_stats)::float8 AS source_events,
  (SELECT coalesce(sum(unique_events), 0) FROM dedup_stats)::float8 AS source_unique,
  (SELECT coalesce(sum(duplicates), 0) FROM dedup_stats)::float8 AS source_duplicates
FROM topic_counters`;

type VerifyRow = typeof ZERO_COUNTS & {
  event_rows: number;
  tombstones: number;
  conflict_rows: number;
  source_events: number;
  source_unique: number;
  source_duplicates: number;
};

interface ConflictRow {
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

function capped(value: number | null, max: number): number | null {
  return value === null ? null : Math.min(value, max);
}

/**
 * The median delay of a dedup_delays histogram: bucket b holds delays d with
 * floor(4 * log2(d + 1)) = b; the median is reported as the middle of its bucket.
 */
export function medianOfBuckets(buckets: readonly { bucket: number; n: number }[]): number | null {
  const total = buckets.reduce((sum, b) => sum + b.n, 0);
  if (total === 0) return null;
  let seen = 0;
  for (const b of [...buckets].sort((x, y) => x.bucket - y.bucket)) {
    seen += b.n;
    if (seen * 2 >= total) {
      const low = 2 ** (b.bucket / 4) - 1;
      const high = 2 ** ((b.bucket + 1) / 4) - 1;
      return Math.round(((low + high) / 2) * 100) / 100;
    }
  }
  return null;
}

interface ApplyRow {
  messages: number;
  received: number;
  inserted: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
}

interface OutcomeRow {
  index: number;
  kind: 'S' | 'D' | 'C' | 'R';
  first_at: string | null;
}

interface EventRow {
  id: number;
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
  payload: Record<string, unknown>;
  processed_at: string;
}

const MAX_CONFLICT_RETRIES = 8;

/**
 * The columns of a StoredEvent. Timestamps are formatted by the database (UTC, microseconds):
 * driver Date parsing loses the microseconds, and PGlite's misreads years before 100.
 */
const EVENT_COLUMNS = `id::float8 AS id, topic, event_id, ${ISO_UTC('"timestamp"')} AS "timestamp",
  source, payload, ${ISO_UTC('processed_at')} AS processed_at`;

function toStoredEvent(r: EventRow): StoredEvent {
  return {
    id: r.id,
    topic: r.topic,
    event_id: r.event_id,
    timestamp: r.timestamp,
    source: r.source,
    payload: r.payload,
    processed_at: r.processed_at,
  };
}

/** Request bodies go to the database as bytes (`bytea`): no re-encoding of the text in Node. */
function asBytes(body: Buffer | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function toResult(row: ApplyRow | undefined): ApplyResult {
  return {
    messages: row?.messages ?? 0,
    received: row?.received ?? 0,
    inserted: row?.inserted ?? 0,
    duplicates: row?.duplicates ?? 0,
    conflicts: row?.conflicts ?? 0,
    rejected: row?.rejected ?? 0,
  };
}

type OutcomeLetter = OutcomeRow['kind'];

const OUTCOMES = { S: 'stored', D: 'duplicate', C: 'duplicate', R: 'rejected' } as const;

/** An outcome from its letter (the apply statement's `kind`, a receipt's character). */
function outcomeOf(letter: OutcomeLetter, index: number, firstAt?: string | null): EventOutcome {
  return {
    index,
    outcome: OUTCOMES[letter],
    conflict: letter === 'C' || letter === 'R',
    originalProcessedAt: letter === 'S' ? undefined : (firstAt ?? undefined),
  };
}

function toOutcome(row: OutcomeRow): EventOutcome {
  return outcomeOf(row.kind, row.index - 1, row.first_at);
}

export class PostgresStore implements Store {
  readonly inbox: Inbox;

  private readonly rejectConflicts: boolean;

  constructor(
    private readonly driver: SqlDriver,
    readonly kind: 'postgres' | 'pglite' = 'postgres',
    options: { duplicatePolicy?: DuplicatePolicy } = {},
  ) {
    this.rejectConflicts = options.duplicatePolicy === 'reject-conflicts';
    this.inbox = new SqlInbox(driver, (sql, params, name) => this.apply(sql, params, name));
  }

  /** Retries `run` when it lost a deadlock or serialization race. */
  private async retrying<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (!(error instanceof SqlConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
        await sleep(Math.random() * 10 * 2 ** attempt);
      }
    }
  }

  /** Runs one apply statement ($2 shard and $3 policy are appended to `params`). */
  private apply(sql: string, params: unknown[], name: string): Promise<ApplyResult> {
    return this.retrying(async () =>
      toResult(
        (await this.driver.query<ApplyRow>(sql, [...params, this.rejectConflicts], name))[0],
      ),
    );
  }

  applyBatches(batches: readonly QueuedBatch[], shard: number): Promise<ApplyResult> {
    if (batches.length === 0) return Promise.resolve(toResult(undefined));
    // The events are already JSON; splice them in rather than parse and serialise them again.
    const json = `[${batches.map((b) => `{"id":${JSON.stringify(b.id)},"body":${b.body}}`).join(',')}]`;
    return this.apply(APPLY_BATCHES_SQL, [json, shard], 'agg_apply_batches');
  }

  applyAccepted(
    batch: AcceptedBatch,
    shard: number,
    options: { detail?: boolean } = {},
  ): Promise<AtomicResult> {
    const params = [asBytes(batch.body), shard, this.rejectConflicts];
    if (options.detail !== true && !this.rejectConflicts) {
      return this.apply(APPLY_ACCEPTED_SQL, params.slice(0, 2), 'agg_apply_accepted');
    }
    // Per event, in a transaction that a rejected conflict rolls back whole.
    return this.retrying(() =>
      this.driver.transaction(async (tx) => {
        const rows = await tx.query<OutcomeRow>(
          APPLY_ACCEPTED_DETAIL_SQL,
          params,
          'agg_apply_accepted_detail',
        );
        const outcomes = rows.map(toOutcome);
        if (outcomes.some((o) => o.outcome === 'rejected')) {
          throw new ConflictRejectedError(outcomes);
        }
        return {
          ...summariseOutcomes(outcomes),
          outcomes: options.detail === true ? outcomes : undefined,
        };
      }),
    );
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    await this.driver.query(
      `INSERT INTO dead_letters (message_id, events, reason, event_count) VALUES ($1, $2, $3, $4)
       ON CONFLICT (message_id) DO NOTHING`,
      [letter.messageId, letter.body, letter.reason, letter.eventCount],
    );
  }

  async deadLetterCount(): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      'SELECT count(*)::float8 AS n FROM dead_letters',
    );
    return rows[0]?.n ?? 0;
  }

  async deadLetteredEvents(): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      'SELECT coalesce(sum(event_count), 0)::float8 AS n FROM dead_letters',
    );
    return rows[0]?.n ?? 0;
  }

  async listDeadLetters(query: { limit: number; offset: number }): Promise<StoredDeadLetter[]> {
    const rows = await this.driver.query<{
      message_id: string;
      events: string;
      reason: string;
      failed_at: string;
      event_count: number;
    }>(
      `SELECT message_id, events, reason, ${ISO_UTC('failed_at')} AS failed_at, event_count
       FROM dead_letters ORDER BY failed_at DESC, message_id LIMIT $1 OFFSET $2`,
      [query.limit, query.offset],
    );
    return rows.map((r) => ({
      messageId: r.message_id,
      body: r.events,
      reason: r.reason,
      eventCount: r.event_count,
      failedAt: r.failed_at,
    }));
  }

  async deleteDeadLetter(messageId: string): Promise<boolean> {
    const rows = await this.driver.query<{ message_id: string }>(
      'DELETE FROM dead_letters WHERE message_id = $1 RETURNING message_id',
      [messageId],
    );
    return rows.length > 0;
  }

  async listEvents(query: EventQuery): Promise<StoredEvent[]> {
    // Events whose payload retention removed are kept only as keys: never listed.
    const where: string[] = ['expired_at IS NULL'];
    const params: unknown[] = [];
    const param = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.topic !== undefined) where.push(`topic = ${param(query.topic)}`);
    if (query.source !== undefined) where.push(`source = ${param(query.source)}`);
    if (query.since !== undefined) where.push(`"timestamp" >= ${param(query.since)}::timestamptz`);
    if (query.until !== undefined) where.push(`"timestamp" < ${param(query.until)}::timestamptz`);
    const desc = query.order !== 'asc';
    if (query.after !== undefined) {
      // Keyset: rows strictly beyond the cursor in (timestamp, id) order, so pages neither skip
      // nor repeat rows while new events arrive.
      const ts = param(query.after.timestamp);
      const id = param(query.after.id);
      where.push(`("timestamp", id) ${desc ? '<' : '>'} (${ts}::timestamptz, ${id}::bigint)`);
    }
    const direction = desc ? 'DESC' : 'ASC';
    const rows = await this.driver.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE ${where.join(' AND ')}
       ORDER BY "timestamp" ${direction}, id ${direction}
       LIMIT ${param(query.limit)} OFFSET ${param(query.offset)}`,
      params,
    );
    return rows.map(toStoredEvent);
  }

  async eventsInIdRange(from: number, to: number): Promise<StoredEvent[]> {
    const rows = await this.driver.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM events WHERE id BETWEEN $1 AND $2 ORDER BY id`,
      [from, to],
      'agg_events_in_range',
    );
    return rows.map(toStoredEvent);
  }

  async eventsAfterId(
    after: number,
    topics: readonly string[] | undefined,
    limit: number,
  ): Promise<StoredEvent[]> {
    const rows =
      topics === undefined
        ? await this.driver.query<EventRow>(
            `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1 AND expired_at IS NULL
             ORDER BY id LIMIT $2`,
            [after, limit],
          )
        : await this.driver.query<EventRow>(
            `SELECT ${EVENT_COLUMNS} FROM events
             WHERE id > $1 AND topic = ANY($2::text[]) AND expired_at IS NULL
             ORDER BY id LIMIT $3`,
            [after, topics, limit],
          );
    return rows.map(toStoredEvent);
  }

  async lastEventId(): Promise<number> {
    const rows = await this.driver.query<{ id: number | null }>(
      'SELECT max(id)::float8 AS id FROM events',
    );
    return rows[0]?.id ?? 0;
  }

  watchInserts(watcher: InsertWatcher): Promise<() => Promise<void>> {
    return this.driver.listen(INSERTED_CHANNEL, {
      onNotify: (payload) => {
        const [from, to] = payload.split('-').map(Number);
        if (Number.isSafeInteger(from) && Number.isSafeInteger(to)) {
          watcher.onRange(from as number, to as number);
        }
      },
      onResumed: () => watcher.onResumed(),
    });
  }

  async topicSummaries(): Promise<TopicSummary[]> {
    const rows = await this.driver.query<{
      topic: string;
      received: number;
      unique_processed: number;
      duplicate_dropped: number;
      conflicting_duplicates: number;
      rejected: number;
      expired: number;
      last_event_at: string | null;
    }>(
      `SELECT t.*, (SELECT ${ISO_UTC('max(e."timestamp")')} FROM events e
                    WHERE e.topic = t.topic AND e.expired_at IS NULL) AS last_event_at
       FROM (SELECT topic, sum(received)::float8 AS received,
                    sum(unique_processed)::float8 AS unique_processed,
                    sum(duplicate_dropped)::float8 AS duplicate_dropped,
                    sum(conflicting_duplicates)::float8 AS conflicting_duplicates,
                    sum(rejected)::float8 AS rejected,
                    sum(expired)::float8 AS expired
             FROM topic_counters GROUP BY topic) t
       ORDER BY t.topic`,
    );
    return rows.map((r) => ({
      topic: r.topic,
      received: r.received,
      uniqueProcessed: r.unique_processed,
      duplicateDropped: r.duplicate_dropped,
      conflictingDuplicates: r.conflicting_duplicates,
      rejected: r.rejected,
      expired: r.expired,
      lastEventAt: r.last_event_at ?? undefined,
    }));
  }

  async counters(): Promise<Counters> {
    const rows = await this.driver.query<CounterRow>(
      `SELECT topic, ${COUNTER_SUMS} FROM topic_counters GROUP BY topic ORDER BY topic`,
      [],
      'agg_counters',
    );
    const total = { ...ZERO_COUNTS };
    for (const r of rows) {
      for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += r[key];
    }
    return {
      received: total.received,
      uniqueProcessed: total.unique_processed,
      duplicateDropped: total.duplicate_dropped,
      conflictingDuplicates: total.conflicting_duplicates,
      rejected: total.rejected,
      expired: total.expired,
      keysExpired: total.keys_expired,
      topics: rows.map((r) => r.topic),
    };
  }

  async countEvents(topic?: string): Promise<number> {
    const rows =
      topic === undefined
        ? await this.driver.query<{ n: number }>(
            'SELECT count(*)::float8 AS n FROM events WHERE expired_at IS NULL',
          )
        : await this.driver.query<{ n: number }>(
            'SELECT count(*)::float8 AS n FROM events WHERE topic = $1 AND expired_at IS NULL',
            [topic],
          );
    return rows[0]?.n ?? 0;
  }

  async expireEvents(topic: string, before: Date, limit: number): Promise<number> {
    // The row stays, without its payload, as the memory of its key (until forgetKeys).
    const rows = await this.driver.query<{ n: number }>(
      `WITH doomed AS (
         SELECT id FROM events WHERE topic = $1 AND "timestamp" < $2 AND expired_at IS NULL
         ORDER BY "timestamp" LIMIT $3 FOR UPDATE SKIP LOCKED
       ),
       gone AS (
         UPDATE events e SET payload = '{}'::jsonb, expired_at = now()
         FROM doomed d WHERE e.id = d.id RETURNING 1
       ),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, expired)
         SELECT $1, -1, count(*) FROM gone HAVING count(*) > 0
         ON CONFLICT (topic, shard) DO UPDATE SET expired = tc.expired + excluded.expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
      [topic, before, limit],
      'agg_expire_events',
    );
    return rows[0]?.n ?? 0;
  }

  async forgetKeys(before: Date, limit: number): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      `WITH doomed AS (
         SELECT id FROM events WHERE expired_at IS NOT NULL AND "timestamp" < $1
         ORDER BY "timestamp" LIMIT $2 FOR UPDATE SKIP LOCKED
       ),
       gone AS (DELETE FROM events e USING doomed d WHERE e.id = d.id RETURNING e.topic),
       counted AS (
         INSERT INTO topic_counters AS tc (topic, shard, keys_expired)
         SELECT topic, -1, count(*) FROM gone GROUP BY topic ORDER BY topic
         ON CONFLICT (topic, shard) DO UPDATE SET keys_expired = tc.keys_expired + excluded.keys_expired
       )
       SELECT (SELECT count(*) FROM gone)::float8 AS n`,
      [before, limit],
      'agg_forget_keys',
    );
    return rows[0]?.n ?? 0;
  }

  async resolvePendingConflicts(limit: number): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(RESOLVE_PENDING_SQL, [limit]);
    return rows[0]?.n ?? 0;
  }

  async listConflicts(query: {
    topic?: string | undefined;
    limit: number;
    beforeId?: number | undefined;
  }): Promise<StoredConflict[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.topic !== undefined) {
      params.push(query.topic);
      where.push(`topic = $${params.length}`);
    }
    if (query.beforeId !== undefined) {
      params.push(query.beforeId);
      where.push(`id < $${params.length}`);
    }
    params.push(query.limit);
    const rows = await this.driver.query<ConflictRow>(
      `SELECT id::float8 AS id, topic, event_id, stored_hash::text, duplicate_hash::text,
              ${ISO_UTC('stored_timestamp')} AS stored_timestamp,
              ${ISO_UTC('duplicate_timestamp')} AS duplicate_timestamp,
              stored_source, duplicate_source, stored_payload, duplicate_payload, rejected,
              differs, ${ISO_UTC('detected_at')} AS detected_at
       FROM conflicts ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map((r) => ({
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
    }));
  }

  async dedupStats(topic: string): Promise<DedupStats[]> {
    const sources = await this.driver.query<{
      source: string;
      events: number;
      unique_events: number;
      duplicates: number;
      conflicts: number;
      max_delay_ms: number;
    }>(
      `SELECT source, sum(events)::float8 AS events, sum(unique_events)::float8 AS unique_events,
              sum(duplicates)::float8 AS duplicates, sum(conflicts)::float8 AS conflicts,
              max(max_delay_ms)::float8 AS max_delay_ms
       FROM dedup_stats WHERE topic = $1 GROUP BY source ORDER BY source`,
      [topic],
    );
    const buckets = await this.driver.query<{ source: string; bucket: number; n: number }>(
      `SELECT source, bucket, sum(n)::float8 AS n FROM dedup_delays WHERE topic = $1
       GROUP BY source, bucket ORDER BY source, bucket`,
      [topic],
    );
    return sources.map((s) => {
      const histogram = buckets.filter((b) => b.source === s.source);
      return {
        source: s.source,
        events: s.events,
        unique: s.unique_events,
        duplicates: s.duplicates,
        conflicts: s.conflicts,
        maxDelayMs: s.max_delay_ms,
        // A bucket's middle can lie above the largest delay seen.
        medianDelayMs: capped(medianOfBuckets(histogram), s.max_delay_ms),
      };
    });
  }

  async receipt(messageId: string): Promise<EventOutcome[] | undefined> {
    const rows = await this.driver.query<{ outcomes: string }>(
      'SELECT outcomes FROM receipts WHERE message_id = $1',
      [messageId],
    );
    const letters = rows[0]?.outcomes;
    return letters === undefined
      ? undefined
      : [...letters].map((letter, index) => outcomeOf(letter as OutcomeLetter, index));
  }

  async pruneLedger(before: Date): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      `WITH gone AS (DELETE FROM applied_messages WHERE applied_at < $1 RETURNING 1),
       receipts_gone AS (DELETE FROM receipts WHERE applied_at < $1)
       SELECT count(*)::float8 AS n FROM gone`,
      [before],
    );
    return rows[0]?.n ?? 0;
  }

  async verify(): Promise<VerifyCheck[]> {
    const [row] = await this.driver.query<VerifyRow>(VERIFY_SQL);
    if (row === undefined) return [];
    const check = (name: string, expected: number, actual: number): VerifyCheck => ({
      name,
      expected,
      actual,
      difference: actual - expected,
    });
    return [
      check(
        'received = unique_processed + duplicate_dropped + rejected',
        row.unique_processed + row.duplicate_dropped + row.rejected,
        row.received,
      ),
      check(
        'rows in events = unique_processed - keys forgotten by retention',
        row.unique_processed - row.keys_expired,
        row.event_rows,
      ),
      check(
        'rows without payload = expired - keys forgotten',
        row.expired - row.keys_expired,
        row.tombstones,
      ),
      check(
        'conflicting_duplicates = rows in conflicts',
        row.conflicting_duplicates,
        row.conflict_rows,
      ),
      check(
        'per topic and source: events = unique + duplicates',
        row.source_unique + row.source_duplicates,
        row.source_events,
      ),
      check('per topic and source: events = received', row.received, row.source_events),
    ];
  }

  async ping(): Promise<void> {
    await this.driver.query('SELECT 1');
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}

type ApplyFn = (sql: string, params: unknown[], name: string) => Promise<ApplyResult>;

/** The inbox queue's storage: rows of `inbox`, applied and deleted in one statement. */
class SqlInbox implements Inbox {
  constructor(
    private readonly driver: SqlDriver,
    private readonly apply: ApplyFn,
  ) {}

  async append(batches: readonly AcceptedBatch[]): Promise<string[]> {
    if (batches.length === 0) return [];
    // One statement for every request that arrived meanwhile: one commit instead of one each.
    const parts: Buffer[] = [Buffer.from('[')];
    batches.forEach((b, i) => {
      if (i > 0) parts.push(Buffer.from(','));
      parts.push(asBytes(b.body));
    });
    parts.push(Buffer.from(']'));
    const rows = await this.driver.query<{ id: string }>(
      `INSERT INTO inbox (events, event_count)
       SELECT b.value->'events', jsonb_array_length(b.value->'events')
       FROM jsonb_array_elements(convert_from($1::bytea, 'UTF8')::jsonb) WITH ORDINALITY AS b(value, ord)
       ORDER BY b.ord
       RETURNING id`,
      [Buffer.concat(parts)],
      'agg_inbox_append',
    );
    // Identity values are drawn in insertion order, which is the order of the batches.
    const ids = rows.map((r) => BigInt(r.id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (ids.length !== batches.length) throw new Error('inbox insert returned a wrong row count');
    return ids.map(String);
  }

  async depth(): Promise<{ messages: number; events: number }> {
    const rows = await this.driver.query<{ messages: number; events: number }>(
      `SELECT count(*)::float8 AS messages, coalesce(sum(event_count), 0)::float8 AS events
       FROM inbox`,
      [],
      'agg_inbox_depth',
    );
    return rows[0] ?? { messages: 0, events: 0 };
  }

  applyNext(maxMessages: number, shard: number): Promise<ApplyResult> {
    return this.apply(APPLY_INBOX_SQL, [maxMessages, shard], 'agg_apply_inbox');
  }

  async contains(id: string): Promise<boolean> {
    const rows = await this.driver.query('SELECT 1 FROM inbox WHERE id = $1::bigint', [id]);
    return rows.length > 0;
  }

  async peekIds(maxMessages: number): Promise<string[]> {
    const rows = await this.driver.query<{ id: string }>(
      'SELECT id::text AS id FROM inbox ORDER BY id LIMIT $1',
      [maxMessages],
    );
    return rows.map((r) => r.id);
  }

  applyOne(id: string, shard: number): Promise<ApplyResult> {
    return this.apply(APPLY_INBOX_ONE_SQL, [id, shard], 'agg_apply_inbox_one');
  }

  async deadLetter(id: string, reason: string): Promise<void> {
    await this.driver.query(
      `WITH moved AS (DELETE FROM inbox WHERE id = $1::bigint RETURNING id, events)
       INSERT INTO dead_letters (message_id, events, reason, event_count)
       SELECT 'inbox-' || id, events::text, $2, jsonb_array_length(events) FROM moved
       ON CONFLICT (message_id) DO NOTHING`,
      [id, reason],
    );
  }
}
