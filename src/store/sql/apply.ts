/**
 * Runs the apply statements (apply-statements.ts): a queue batch, or an atomic publish with or
 * without its per-event outcomes. Each call is one statement, retried when it lost a deadlock
 * or serialization race.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AcceptedBatch } from '../../log-event.js';
import { ConflictRejectedError } from '../../errors.js';
import type { SqlDriver } from '../sql-driver.js';
import { SqlConflictError } from '../sql-errors.js';
import {
  summariseOutcomes,
  type ApplyResult,
  type AtomicResult,
  type DuplicatePolicy,
  type QueuedBatch,
} from '../store.js';
import { toResult, type ApplyRow } from './rows/apply-result-row.js';
import { AcceptedApplyGroups, type GroupOutcomeRow } from './apply-groups.js';
import { APPLY_ACCEPTED_DETAIL, APPLY_ACCEPTED_GROUP, APPLY_BATCHES } from './apply-statements.js';
import { toOutcome, type OutcomeRow } from './rows/outcome-codec.js';
import { bodyWords, withWords } from '../../search/granule-words.js';
import { asBytes } from './request-bytes.js';
import type { Statement } from './statement.js';

const MAX_CONFLICT_RETRIES = 8;

/** Retries `run` when it lost a deadlock or serialization race. */
async function retrying<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof SqlConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      await sleep(Math.random() * 10 * 2 ** attempt);
    }
  }
}

/**
 * Applies batches with the store's duplicate policy. Shared by the Store (queue batches, atomic
 * publishes) and the inbox (its own apply statements), so every apply retries the same way.
 */
export class SqlApplier {
  private readonly rejectConflicts: boolean;
  private readonly groups: AcceptedApplyGroups;

  constructor(
    private readonly driver: SqlDriver,
    duplicatePolicy: DuplicatePolicy | undefined,
  ) {
    this.rejectConflicts = duplicatePolicy === 'reject-conflicts';
    this.groups = new AcceptedApplyGroups((bodies, shard) =>
      retrying(() =>
        this.driver.query<GroupOutcomeRow>(
          APPLY_ACCEPTED_GROUP.text,
          [bodies, shard, false],
          APPLY_ACCEPTED_GROUP.name,
        ),
      ),
    );
  }

  /** Runs one apply statement ($2 shard and $3 policy are appended to `params`). */
  run(statement: Statement, params: unknown[]): Promise<ApplyResult> {
    return retrying(async () =>
      toResult(
        (
          await this.driver.query<ApplyRow>(
            statement.text,
            [...params, this.rejectConflicts],
            statement.name,
          )
        )[0],
      ),
    );
  }

  applyBatches(batches: readonly QueuedBatch[], shard: number): Promise<ApplyResult> {
    if (batches.length === 0) return Promise.resolve(toResult(undefined));
    // The events are already JSON; splice them in rather than serialise them again. They are
    // parsed once, here, for the words of the search granule.
    const json = `[${batches
      .map(
        (b) =>
          `{"id":${JSON.stringify(b.id)},"words":${JSON.stringify(bodyWords(b.body))},"body":${b.body}}`,
      )
      .join(',')}]`;
    return this.run(APPLY_BATCHES, [json, shard]);
  }

  /**
   * An atomic publish. Concurrent ones are applied together (apply-groups.ts), except under
   * reject-conflicts, where each is one transaction that a rejected conflict rolls back whole
   * (ConflictRejectedError with the outcomes).
   */
  async applyAccepted(
    batch: AcceptedBatch,
    shard: number,
    options: { detail?: boolean } = {},
  ): Promise<AtomicResult> {
    if (!this.rejectConflicts) {
      const outcomes = await this.groups.apply(
        withWords(asBytes(batch.body)),
        batch.eventCount,
        shard,
      );
      return {
        ...summariseOutcomes(outcomes),
        outcomes: options.detail === true ? outcomes : undefined,
      };
    }
    return retrying(() =>
      this.driver.transaction(async (tx) => {
        const rows = await tx.query<OutcomeRow>(
          APPLY_ACCEPTED_DETAIL.text,
          [withWords(asBytes(batch.body)), shard, true],
          APPLY_ACCEPTED_DETAIL.name,
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
}
