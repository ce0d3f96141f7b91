/**
 * The ledger of applied messages (so a redelivery is not counted twice) and their receipts
 * (what became of each event, kept as one letter per event).
 */
import type { SqlQueryable } from '../sql-driver.js';
import type { EventOutcome } from '../store.js';
import { decodeReceipt } from './rows/outcome-codec.js';
import { run, type Statement } from './statement.js';

export const RECEIPT: Statement = {
  name: 'agg_receipt',
  text: 'SELECT outcomes FROM receipts WHERE message_id = $1',
};

/** $1: ledger rows and receipts written before this instant go. */
export const PRUNE_LEDGER: Statement = {
  name: 'agg_prune_ledger',
  text: `WITH gone AS (DELETE FROM applied_messages WHERE applied_at < $1 RETURNING 1),
       receipts_gone AS (DELETE FROM receipts WHERE applied_at < $1)
       SELECT count(*)::float8 AS n FROM gone`,
};

export async function receipt(
  db: SqlQueryable,
  messageId: string,
): Promise<EventOutcome[] | undefined> {
  const rows = await run<{ outcomes: string }>(db, RECEIPT, [messageId]);
  const letters = rows[0]?.outcomes;
  return letters === undefined ? undefined : decodeReceipt(letters);
}

export async function pruneLedger(db: SqlQueryable, before: Date): Promise<number> {
  const rows = await run<{ n: number }>(db, PRUNE_LEDGER, [before]);
  return rows[0]?.n ?? 0;
}
