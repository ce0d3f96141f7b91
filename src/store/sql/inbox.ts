/**
 * The inbox queue's storage: rows of `inbox`, claimed, applied and deleted by one statement, so a
 * message is never applied twice nor lost whatever moment a worker dies. Its reads (depth,
 * contains, peekIds) fail as reads (sql-errors.ts: reading), never as a refused write.
 */
import type { AcceptedBatch } from '../../log-event.js';
import type { SqlDriver } from '../sql-driver.js';
import { reading } from '../sql-errors.js';
import type { ApplyResult, Inbox } from '../store.js';
import { APPLY_CTES, APPLY_SUMMARY } from './apply-statements.js';
import type { SqlApplier } from './apply.js';
import { withWords } from '../../search/granule-words.js';
import { asBytes } from './request-bytes.js';
import { run, type Statement } from './statement.js';

/**
 * Channel on which each inbox insert wakes idle workers, in every process (payload empty): a
 * worker process would otherwise see a message only at its next poll.
 */
export const INBOX_APPENDED_CHANNEL = 'agg_inbox_appended';

/**
 * Sent right after the insert committed. NOTIFY is delivered once per transaction and channel,
 * so a burst of inserts wakes each listener a few times, not once per request.
 */
export const INBOX_WAKE: Statement = {
  name: 'agg_inbox_wake',
  text: `SELECT pg_notify('${INBOX_APPENDED_CHANNEL}', '')`,
};

/**
 * The summary of an inbox apply, and the traceparents of the messages it applied (tracing.ts
 * links the worker's apply span to each).
 */
const INBOX_SUMMARY = `,
summary AS (${APPLY_SUMMARY})
SELECT summary.*,
       (SELECT array_agg(traceparent) FROM claimed WHERE traceparent IS NOT NULL) AS traceparents
FROM summary`;

/** $1: how many inbox messages to claim. Rows other workers hold are skipped, not waited for. */
export const APPLY_INBOX: Statement = {
  name: 'agg_apply_inbox',
  text: `
WITH claimed AS (
  DELETE FROM inbox
  WHERE id IN (SELECT id FROM inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING id AS ord, events, ('inbox-' || id) COLLATE "C" AS message_id, traceparent, words
),
${APPLY_CTES}${INBOX_SUMMARY}`,
};

/** $1: the id of one inbox message. */
export const APPLY_INBOX_ONE: Statement = {
  name: 'agg_apply_inbox_one',
  text: `
WITH claimed AS (
  DELETE FROM inbox WHERE id = $1::bigint
  RETURNING id AS ord, events, ('inbox-' || id) COLLATE "C" AS message_id, traceparent, words
),
${APPLY_CTES}${INBOX_SUMMARY}`,
};

/**
 * $1: a JSON array of request bodies with their words (granule-words.ts withWords), as UTF-8
 * bytes; $2: their traceparents (null for none); one row each, in order.
 */
export const INBOX_APPEND: Statement = {
  name: 'agg_inbox_append',
  text: `INSERT INTO inbox (events, event_count, traceparent, words)
       SELECT b.value->'body'->'events', jsonb_array_length(b.value->'body'->'events'),
              ($2::text[])[b.ord], b.value->'words'
       FROM jsonb_array_elements(convert_from($1::bytea, 'UTF8')::jsonb) WITH ORDINALITY AS b(value, ord)
       ORDER BY b.ord
       RETURNING id`,
};

export const INBOX_DEPTH: Statement = {
  name: 'agg_inbox_depth',
  text: `SELECT count(*)::float8 AS messages, coalesce(sum(event_count), 0)::float8 AS events
       FROM inbox`,
};

export const INBOX_CONTAINS: Statement = {
  name: 'agg_inbox_contains',
  text: 'SELECT 1 FROM inbox WHERE id = $1::bigint',
};

export const INBOX_PEEK_IDS: Statement = {
  name: 'agg_inbox_peek_ids',
  text: 'SELECT id::text AS id FROM inbox ORDER BY id LIMIT $1',
};

/** $1: inbox id, $2: reason. Moves the message to the dead letters in one statement. */
export const INBOX_DEAD_LETTER: Statement = {
  name: 'agg_inbox_dead_letter',
  text: `WITH moved AS (DELETE FROM inbox WHERE id = $1::bigint RETURNING id, events)
       INSERT INTO dead_letters (message_id, events, reason, event_count)
       SELECT 'inbox-' || id, events::text, $2, jsonb_array_length(events) FROM moved
       ON CONFLICT (message_id) DO NOTHING`,
};

export class SqlInbox implements Inbox {
  /**
   * `wakeOtherProcesses`: NOTIFY after each insert. Only PostgreSQL has workers in other
   * processes; PGlite's single process wakes its workers itself.
   */
  constructor(
    private readonly db: SqlDriver,
    private readonly applier: SqlApplier,
    private readonly options: { wakeOtherProcesses: boolean } = { wakeOtherProcesses: false },
  ) {}

  async append(batches: readonly AcceptedBatch[]): Promise<string[]> {
    if (batches.length === 0) return [];
    // One statement for every request that arrived meanwhile: one commit instead of one each.
    const parts: Buffer[] = [Buffer.from('[')];
    batches.forEach((b, i) => {
      if (i > 0) parts.push(Buffer.from(','));
      parts.push(withWords(asBytes(b.body)));
    });
    parts.push(Buffer.from(']'));
    const traceparents = batches.map((b) => b.traceparent ?? null);
    const rows = await run<{ id: string }>(this.db, INBOX_APPEND, [
      Buffer.concat(parts),
      traceparents,
    ]);
    // Identity values are drawn in insertion order, which is the order of the batches.
    const ids = rows.map((r) => BigInt(r.id)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (ids.length !== batches.length) throw new Error('inbox insert returned a wrong row count');
    // Not awaited, and its failure ignored: the rows are committed, and a worker not woken finds
    // them at its next poll anyway.
    if (this.options.wakeOtherProcesses) void run(this.db, INBOX_WAKE).catch(() => undefined);
    return ids.map(String);
  }

  async watchAppends(onAppend: () => void): Promise<() => Promise<void>> {
    if (!this.options.wakeOtherProcesses) return async () => undefined;
    // A lost connection is listened again by the driver; a wake-up missed meanwhile costs one
    // poll interval, so resuming needs nothing more than a wake-up.
    return this.db.listen(INBOX_APPENDED_CHANNEL, { onNotify: onAppend, onResumed: onAppend });
  }

  async depth(): Promise<{ messages: number; events: number }> {
    const rows = await reading(run<{ messages: number; events: number }>(this.db, INBOX_DEPTH, []));
    return rows[0] ?? { messages: 0, events: 0 };
  }

  applyNext(maxMessages: number, shard: number): Promise<ApplyResult> {
    return this.applier.run(APPLY_INBOX, [maxMessages, shard]);
  }

  async contains(id: string): Promise<boolean> {
    const rows = await reading(run(this.db, INBOX_CONTAINS, [id]));
    return rows.length > 0;
  }

  async peekIds(maxMessages: number): Promise<string[]> {
    const rows = await reading(run<{ id: string }>(this.db, INBOX_PEEK_IDS, [maxMessages]));
    return rows.map((r) => r.id);
  }

  applyOne(id: string, shard: number): Promise<ApplyResult> {
    return this.applier.run(APPLY_INBOX_ONE, [id, shard]);
  }

  async deadLetter(id: string, reason: string): Promise<void> {
    await run(this.db, INBOX_DEAD_LETTER, [id, reason]);
  }
}
