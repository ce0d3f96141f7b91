/**
 * Hands the checked events of a shipper's request to the same machinery POST /publish uses: the
 * queue (one message per request, split only past MAX_EVENTS_PER_REQUEST) or, where the protocol
 * needs a per-record answer, the store's atomic apply with per-event outcomes. Either way the
 * message body is the envelope `{"events":[…]}` the database reads, so receipts, counters,
 * conflicts, per-source statistics and the live tail treat these events like any other.
 */
import { ConflictRejectedError } from '../errors.js';
import type { RouteContext, StorelessRouteContext } from '../http/app-context.js';
import type { AcceptedBatch } from '../log-event.js';
import { nextAtomicShard } from '../store/counter-shards.js';
import type { EventApplier, EventOutcome } from '../store/store.js';

/**
 * Response header of the queued shipper routes: the ids of the queue messages the request became
 * (comma-separated), for GET /publish/receipts/{id}.
 */
export const MESSAGE_ID_HEADER = 'x-message-id';

/** The envelope the queue and the store read, from events' JSON texts. */
export function envelopeOf(eventJsons: readonly string[]): AcceptedBatch {
  return { body: `{"events":[${eventJsons.join(',')}]}`, eventCount: eventJsons.length };
}

/**
 * Queues the events durably: one message, or one per MAX_EVENTS_PER_REQUEST events when a
 * shipper's batch is larger (its retry after a partial failure only repeats duplicates).
 * Resolves with the message ids (for GET /publish/receipts/{id}) once every message would survive
 * a crash; rejects with the queue's error (AGG_ERR_QUEUE_FULL, AGG_ERR_QUEUE_UNAVAILABLE: 503
 * with Retry-After).
 */
export async function enqueueEvents(
  ctx: StorelessRouteContext,
  eventJsons: readonly string[],
): Promise<string[]> {
  const size = ctx.config.maxEventsPerRequest;
  const ids: string[] = [];
  for (let start = 0; start < eventJsons.length; start += size) {
    const batch = envelopeOf(eventJsons.slice(start, start + size));
    ids.push(await ctx.queue.enqueue(batch));
    ctx.metrics.eventsAccepted.inc(batch.eventCount);
  }
  return ids;
}

/**
 * Stores the events now and returns what became of each, by position. Under
 * DUPLICATE_POLICY=reject-conflicts the store refuses a batch that holds a conflicting duplicate
 * whole; the conflicting events are then answered `rejected` and the rest applied again (a
 * conflict can appear between the two tries, hence the loop, which ends as each round removes at
 * least one event).
 */
export async function applyEvents(
  ctx: RouteContext<EventApplier>,
  eventJsons: readonly string[],
): Promise<EventOutcome[]> {
  const outcomes = new Array<EventOutcome | undefined>(eventJsons.length);
  let pending = eventJsons.map((json, index) => ({ json, index }));
  const size = ctx.config.maxEventsPerRequest;
  while (pending.length > 0) {
    const chunk = pending.slice(0, size);
    try {
      const result = await ctx.store.applyAccepted(
        envelopeOf(chunk.map((p) => p.json)),
        nextAtomicShard(),
        { detail: true },
      );
      ctx.metrics.eventsAccepted.inc(chunk.length);
      for (const o of result.outcomes ?? []) {
        const at = chunk[o.index];
        if (at !== undefined) outcomes[at.index] = { ...o, index: at.index };
      }
      pending = pending.slice(size);
    } catch (error) {
      if (!(error instanceof ConflictRejectedError)) throw error;
      const refused = new Set(error.outcomes.filter((o) => o.conflict).map((o) => o.index));
      if (refused.size === 0) throw error;
      for (const i of refused) {
        const at = chunk[i];
        if (at !== undefined) {
          outcomes[at.index] = { index: at.index, outcome: 'rejected', conflict: true };
        }
      }
      pending = [...chunk.filter((_, i) => !refused.has(i)), ...pending.slice(size)];
    }
  }
  return outcomes.map((o, index) => o ?? { index, outcome: 'rejected' as const, conflict: false });
}
