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
import type { SqlDriver } from '../sql-driver.js';
import { SqlConflictError } from '../sql-errors.js';
import type {
  ApplyResult,
  Counters,
  DeadLetter,
  EventQuery,
  Inbox,
  InsertWatcher,
  QueuedBatch,
  Store,
  StoredDeadLetter,
  TopicSummary,
} from '../store.js';

/**
 * Channel on which every transaction that stores events announces, at commit, the range of ids
 * it inserted (`min-max`). Other rows may lie in that range; each row is announced by its own
 * transaction's range.
 */
export const INSERTED_CHANNEL = 'agg_events_inserted';

/**
 * The part of every apply statement after the messages are known. It expects a CTE
 * `claimed(ord, events)` (one row per message, `events` a JSON array) and `$2` = counter shard.
 */
const APPLY_TAIL = `
input AS (
  SELECT e.value->>'topic' AS topic,
         e.value->>'event_id' AS event_id,
         (e.value->>'timestamp')::timestamptz AS ts,
         e.value->>'source' AS source,
         coalesce(e.value->'payload', '{}'::jsonb) AS payload,
         c.ord AS mord,
         e.ord AS eord
  FROM claimed c
  CROSS JOIN LATERAL jsonb_array_elements(c.events) WITH ORDINALITY AS e(value, ord)
),
inserted AS (
  INSERT INTO events (topic, event_id, "timestamp", source, payload)
  SELECT DISTINCT ON (topic, event_id) topic, event_id, ts, source, payload
  FROM input
  ORDER BY topic, event_id, mord, eord
  ON CONFLICT (topic, event_id) DO NOTHING
  RETURNING id, topic
),
received AS (SELECT topic, count(*) AS n FROM input GROUP BY topic),
stored AS (SELECT topic, count(*) AS n FROM inserted GROUP BY topic),
counted AS (
  INSERT INTO topic_counters AS tc (topic, shard, received, unique_processed, duplicate_dropped)
  SELECT r.topic, $2::smallint, r.n, coalesce(s.n, 0), r.n - coalesce(s.n, 0)
  FROM received r LEFT JOIN stored s USING (topic)
  ORDER BY r.topic
  ON CONFLICT (topic, shard) DO UPDATE SET
    received = tc.received + excluded.received,
    unique_processed = tc.unique_processed + excluded.unique_processed,
    duplicate_dropped = tc.duplicate_dropped + excluded.duplicate_dropped
)
SELECT (SELECT count(*) FROM claimed)::float8 AS messages,
       (SELECT coalesce(sum(n), 0) FROM received)::float8 AS received,
       (SELECT count(*) FROM inserted)::float8 AS inserted,
       (SELECT pg_notify('${INSERTED_CHANNEL}', min(id) || '-' || max(id))
        FROM inserted HAVING count(*) > 0) IS NOT NULL AS notified`;

/** $1: JSON array of {id, body}. Messages already in the ledger are left out. */
const APPLY_BATCHES_SQL = `
WITH msgs AS (
  SELECT m.value->>'id' AS message_id, m.value->'body'->'events' AS events, m.ord
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
  SELECT DISTINCT ON (message_id) msgs.ord, msgs.events
  FROM msgs JOIN fresh USING (message_id)
  ORDER BY message_id, msgs.ord
),
${APPLY_TAIL}`;

/** $1: a request body as UTF-8 bytes, applied as one message without a ledger row. */
const APPLY_ACCEPTED_SQL = `
WITH claimed AS (SELECT 1::bigint AS ord, convert_from($1::bytea, 'UTF8')::jsonb->'events' AS events),
${APPLY_TAIL}`;

/** $1: how many inbox messages to claim. Rows other workers hold are skipped, not waited for. */
const APPLY_INBOX_SQL = `
WITH claimed AS (
  DELETE FROM inbox
  WHERE id IN (SELECT id FROM inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING id AS ord, events
),
${APPLY_TAIL}`;

/** $1: the id of one inbox message. */
const APPLY_INBOX_ONE_SQL = `
WITH claimed AS (DELETE FROM inbox WHERE id = $1::bigint RETURNING id AS ord, events),
${APPLY_TAIL}`;

interface ApplyRow {
  messages: number;
  received: number;
  inserted: number;
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

/** SQL rendering a timestamptz column as ISO 8601 UTC with microseconds. */
const ISO_UTC = (column: string) =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

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
  const messages = row?.messages ?? 0;
  const received = row?.received ?? 0;
  const inserted = row?.inserted ?? 0;
  return { messages, received, inserted, duplicates: received - inserted };
}

export class PostgresStore implements Store {
  readonly inbox: Inbox;

  constructor(
    private readonly driver: SqlDriver,
    readonly kind: 'postgres' | 'pglite' = 'postgres',
  ) {
    this.inbox = new SqlInbox(driver, (sql, params, name) => this.apply(sql, params, name));
  }

  /** Runs one apply statement, retrying when it lost a deadlock or serialization race. */
  private async apply(sql: string, params: unknown[], name: string): Promise<ApplyResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        const rows = await this.driver.query<ApplyRow>(sql, params, name);
        return toResult(rows[0]);
      } catch (error) {
        if (!(error instanceof SqlConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
        await sleep(Math.random() * 10 * 2 ** attempt);
      }
    }
  }

  applyBatches(batches: readonly QueuedBatch[], shard: number): Promise<ApplyResult> {
    if (batches.length === 0) return Promise.resolve(toResult(undefined));
    // The events are already JSON; splice them in rather than parse and serialise them again.
    const json = `[${batches.map((b) => `{"id":${JSON.stringify(b.id)},"body":${b.body}}`).join(',')}]`;
    return this.apply(APPLY_BATCHES_SQL, [json, shard], 'agg_apply_batches');
  }

  applyAccepted(batch: AcceptedBatch, shard: number): Promise<ApplyResult> {
    return this.apply(APPLY_ACCEPTED_SQL, [asBytes(batch.body), shard], 'agg_apply_accepted');
  }

  async deadLetter(letter: DeadLetter): Promise<void> {
    await this.driver.query(
      `INSERT INTO dead_letters (message_id, events, reason) VALUES ($1, $2, $3)
       ON CONFLICT (message_id) DO NOTHING`,
      [letter.messageId, letter.body, letter.reason],
    );
  }

  async deadLetterCount(): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      'SELECT count(*)::float8 AS n FROM dead_letters',
    );
    return rows[0]?.n ?? 0;
  }

  async listDeadLetters(query: { limit: number; offset: number }): Promise<StoredDeadLetter[]> {
    const rows = await this.driver.query<{
      message_id: string;
      events: string;
      reason: string;
      failed_at: string;
    }>(
      `SELECT message_id, events, reason, ${ISO_UTC('failed_at')} AS failed_at
       FROM dead_letters ORDER BY failed_at DESC, message_id LIMIT $1 OFFSET $2`,
      [query.limit, query.offset],
    );
    return rows.map((r) => ({
      messageId: r.message_id,
      body: r.events,
      reason: r.reason,
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
    const where: string[] = [];
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
       ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
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
            `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2`,
            [after, limit],
          )
        : await this.driver.query<EventRow>(
            `SELECT ${EVENT_COLUMNS} FROM events WHERE id > $1 AND topic = ANY($2::text[])
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
      expired: number;
      last_event_at: string | null;
    }>(
      `SELECT t.*, (SELECT ${ISO_UTC('max(e."timestamp")')} FROM events e WHERE e.topic = t.topic)
                   AS last_event_at
       FROM (SELECT topic, sum(received)::float8 AS received,
                    sum(unique_processed)::float8 AS unique_processed,
                    sum(duplicate_dropped)::float8 AS duplicate_dropped,
                    sum(expired)::float8 AS expired
             FROM topic_counters GROUP BY topic) t
       ORDER BY t.topic`,
    );
    return rows.map((r) => ({
      topic: r.topic,
      received: r.received,
      uniqueProcessed: r.unique_processed,
      duplicateDropped: r.duplicate_dropped,
      expired: r.expired,
      lastEventAt: r.last_event_at ?? undefined,
    }));
  }

  async counters(): Promise<Counters> {
    const rows = await this.driver.query<{
      topic: string;
      received: number;
      unique_processed: number;
      duplicate_dropped: number;
      expired: number;
    }>(
      `SELECT topic, sum(received)::float8 AS received,
              sum(unique_processed)::float8 AS unique_processed,
              sum(duplicate_dropped)::float8 AS duplicate_dropped,
              sum(expired)::float8 AS expired
       FROM topic_counters GROUP BY topic ORDER BY topic`,
      [],
      'agg_counters',
    );
    let received = 0;
    let uniqueProcessed = 0;
    let duplicateDropped = 0;
    let expired = 0;
    for (const r of rows) {
      received += r.received;
      uniqueProcessed += r.unique_processed;
      duplicateDropped += r.duplicate_dropped;
      expired += r.expired;
    }
    const topics = rows.map((r) => r.topic);
    return { received, uniqueProcessed, duplicateDropped, expired, topics };
  }

  async countEvents(topic?: string): Promise<number> {
    const rows =
      topic === undefined
        ? await this.driver.query<{ n: number }>('SELECT count(*)::float8 AS n FROM events')
        : await this.driver.query<{ n: number }>(
            'SELECT count(*)::float8 AS n FROM events WHERE topic = $1',
            [topic],
          );
    return rows[0]?.n ?? 0;
  }

  async expireEvents(topic: string, before: Date, limit: number): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      `WITH doomed AS (
         SELECT id FROM events WHERE topic = $1 AND "timestamp" < $2
         ORDER BY "timestamp" LIMIT $3 FOR UPDATE SKIP LOCKED
       ),
       gone AS (DELETE FROM events e USING doomed d WHERE e.id = d.id RETURNING 1),
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

  async pruneLedger(before: Date): Promise<number> {
    const rows = await this.driver.query<{ n: number }>(
      `WITH gone AS (DELETE FROM applied_messages WHERE applied_at < $1 RETURNING 1)
       SELECT count(*)::float8 AS n FROM gone`,
      [before],
    );
    return rows[0]?.n ?? 0;
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
       INSERT INTO dead_letters (message_id, events, reason)
       SELECT 'inbox-' || id, events::text, $2 FROM moved
       ON CONFLICT (message_id) DO NOTHING`,
      [id, reason],
    );
  }
}
