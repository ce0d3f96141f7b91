/** Dead letters: messages the database refused, parked with the reason for inspection. */
import type { SqlQueryable } from '../sql-driver.js';
import type { DeadLetter, StoredDeadLetter } from '../store.js';
import { toStoredDeadLetter, type DeadLetterRow } from './rows/dead-letter-row.js';
import { ISO_UTC } from './sql-fragments.js';
import { run, type Statement } from './statement.js';

export const INSERT_DEAD_LETTER: Statement = {
  name: 'agg_insert_dead_letter',
  text: `INSERT INTO dead_letters (message_id, events, reason, event_count) VALUES ($1, $2, $3, $4)
       ON CONFLICT (message_id) DO NOTHING`,
};

export const COUNT_DEAD_LETTERS: Statement = {
  name: 'agg_count_dead_letters',
  text: 'SELECT count(*)::float8 AS n FROM dead_letters',
};

export const DEAD_LETTERED_EVENTS: Statement = {
  name: 'agg_dead_lettered_events',
  text: 'SELECT coalesce(sum(event_count), 0)::float8 AS n FROM dead_letters',
};

export const LIST_DEAD_LETTERS: Statement = {
  name: 'agg_list_dead_letters',
  text: `SELECT message_id, events, reason, ${ISO_UTC('failed_at')} AS failed_at, event_count
       FROM dead_letters ORDER BY failed_at DESC, message_id LIMIT $1 OFFSET $2`,
};

export const DELETE_DEAD_LETTER: Statement = {
  name: 'agg_delete_dead_letter',
  text: 'DELETE FROM dead_letters WHERE message_id = $1 RETURNING message_id',
};

export async function insertDeadLetter(db: SqlQueryable, letter: DeadLetter): Promise<void> {
  await run(db, INSERT_DEAD_LETTER, [
    letter.messageId,
    letter.body,
    letter.reason,
    letter.eventCount,
  ]);
}

export async function countDeadLetters(db: SqlQueryable): Promise<number> {
  const rows = await run<{ n: number }>(db, COUNT_DEAD_LETTERS);
  return rows[0]?.n ?? 0;
}

export async function deadLetteredEvents(db: SqlQueryable): Promise<number> {
  const rows = await run<{ n: number }>(db, DEAD_LETTERED_EVENTS);
  return rows[0]?.n ?? 0;
}

export async function listDeadLetters(
  db: SqlQueryable,
  query: { limit: number; offset: number },
): Promise<StoredDeadLetter[]> {
  const rows = await run<DeadLetterRow>(db, LIST_DEAD_LETTERS, [query.limit, query.offset]);
  return rows.map(toStoredDeadLetter);
}

export async function deleteDeadLetter(db: SqlQueryable, messageId: string): Promise<boolean> {
  const rows = await run(db, DELETE_DEAD_LETTER, [messageId]);
  return rows.length > 0;
}
