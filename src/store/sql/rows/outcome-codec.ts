/**
 * The one-letter outcome codec. The apply statements name what became of each event with a
 * letter (`kind`: S stored, D duplicate, C conflicting duplicate dropped, R conflict rejected);
 * a receipt keeps a message's letters as one string. This turns letters into EventOutcomes.
 */
import type { EventOutcome } from '../../store.js';

/** One row per event of APPLY_ACCEPTED_DETAIL. */
export interface OutcomeRow {
  /** Position in the request, from 1 (SQL ordinality). */
  index: number;
  kind: 'S' | 'D' | 'C' | 'R';
  first_at: string | null;
}

export type OutcomeLetter = OutcomeRow['kind'];

const OUTCOMES = { S: 'stored', D: 'duplicate', C: 'duplicate', R: 'rejected' } as const;

/** An outcome from its letter (the apply statement's `kind`, a receipt's character). */
export function outcomeOf(
  letter: OutcomeLetter,
  index: number,
  firstAt?: string | null,
): EventOutcome {
  return {
    index,
    outcome: OUTCOMES[letter],
    conflict: letter === 'C' || letter === 'R',
    originalProcessedAt: letter === 'S' ? undefined : (firstAt ?? undefined),
  };
}

export function toOutcome(row: OutcomeRow): EventOutcome {
  return outcomeOf(row.kind, row.index - 1, row.first_at);
}

/** The outcomes of a receipt's letters, one per event, in order. */
export function decodeReceipt(letters: string): EventOutcome[] {
  return [...letters].map((letter, index) => outcomeOf(letter as OutcomeLetter, index));
}
