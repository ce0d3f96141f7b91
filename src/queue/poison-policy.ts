/**
 * The poison-message policy every queue backend follows: apply a batch of messages in one
 * transaction; if the store refuses the data (StoreRejectedError: a value the database cannot
 * hold), apply the messages one at a time so only the refused ones are parked in the dead-letter
 * table, with the reason, and the others are stored. Any other failure (the store is away, a
 * deadlock past its retries) is not the message's fault: it propagates, nothing is parked, and
 * the messages stay queued for the next attempt.
 *
 * The backend says how to apply all, how to apply one and how to park one; this module decides
 * when. A backend acknowledges (or deletes) the messages only after this resolves.
 */
import { StoreRejectedError } from '../errors.js';
import type { ApplyResult, DeadLetterStore, EventApplier, QueuedBatch } from '../store/store.js';
import { addResults, EMPTY_RESULT, type ConsumeResult } from './queue.js';

/** How one backend applies and parks its messages of type M. */
export interface PoisonHandling<M> {
  /** Applies the whole batch in one transaction. */
  applyAll(): Promise<ApplyResult>;
  /**
   * The messages to try one by one once `applyAll` was refused, oldest first (read again if the
   * backend's batch may have changed meanwhile).
   */
  messages(): Promise<readonly M[]>;
  /** Applies one message in a transaction of its own. */
  applyOne(message: M): Promise<ApplyResult>;
  /** Parks one message with the store's reason, in one transaction; a second park is a no-op. */
  deadLetter(message: M, reason: string): Promise<void>;
  /** How a log line names the message. */
  describe(message: M): string;
  /** Told of each message parked. */
  onWarning?: ((message: string, error?: unknown) => void) | undefined;
}

/**
 * Applies a batch under the poison-message policy; resolves with what was applied plus the
 * number of messages parked (`deadLettered`). Rejects with any failure that is not a refusal of
 * the data, having parked nothing for it.
 */
export async function applyWithPoisonPolicy<M>(
  handling: PoisonHandling<M>,
): Promise<ConsumeResult> {
  try {
    return { ...(await handling.applyAll()), deadLettered: 0 };
  } catch (error) {
    if (!(error instanceof StoreRejectedError)) throw error;
  }
  let total = EMPTY_RESULT;
  for (const message of await handling.messages()) {
    try {
      total = addResults(total, await handling.applyOne(message));
    } catch (error) {
      if (!(error instanceof StoreRejectedError)) throw error;
      await handling.deadLetter(message, error.message);
      handling.onWarning?.(`${handling.describe(message)} moved to dead letters`, error);
      total = addResults(total, { ...EMPTY_RESULT, deadLettered: 1 });
    }
  }
  return total;
}

/**
 * The policy for a batch of messages a broker delivered (Redis Streams, JetStream): all of them in
 * one transaction on counter shard `shard`, else one by one, parking the refused ones under their
 * message id. Errors as applyWithPoisonPolicy.
 */
export function applyDeliveredWithPoisonPolicy(
  store: EventApplier & DeadLetterStore,
  messages: readonly (QueuedBatch & { readonly count: number })[],
  shard: number,
  onWarning?: (message: string, error?: unknown) => void,
): Promise<ConsumeResult> {
  return applyWithPoisonPolicy({
    applyAll: () => store.applyBatches(messages, shard),
    messages: () => Promise.resolve(messages),
    applyOne: (message) => store.applyBatches([message], shard),
    deadLetter: (message, reason) =>
      store.deadLetter({
        messageId: message.id,
        body: message.body,
        reason,
        eventCount: message.count,
      }),
    describe: (message) => `message ${message.id}`,
    onWarning,
  });
}
