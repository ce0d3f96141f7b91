/**
 * Group commit for atomic applies (POST /publish?atomic=true, the Elasticsearch bulk API): the
 * requests that arrive while statements are running wait and then go to the database together,
 * in one statement (APPLY_ACCEPTED_GROUP), instead of one transaction each. An idle service
 * applies a lone request at once; under load, statements grow and their number stays bounded,
 * the way queue workers apply many messages per statement.
 *
 * Each request still learns exactly what became of each of its events. A statement that fails
 * for a group of several requests is tried again request by request, so a request the database
 * refuses fails alone. Not for DUPLICATE_POLICY=reject-conflicts, where a request with a
 * conflict is rolled back whole (apply.ts applies those one transaction each).
 */
import type { EventOutcome } from '../store.js';
import { toOutcome, type OutcomeRow } from './rows/outcome-codec.js';

/** One row of APPLY_ACCEPTED_GROUP: an event's outcome and the request it came in. */
export interface GroupOutcomeRow extends OutcomeRow {
  /** The request's position in the group, from 1. */
  request: number;
}

/** Runs APPLY_ACCEPTED_GROUP on the JSON array of `bodies` (UTF-8), counting in `shard`. */
export type GroupRunner = (bodies: Buffer, shard: number) => Promise<GroupOutcomeRow[]>;

export interface GroupLimits {
  /** Statements running at once; the requests arriving meanwhile wait for the next. */
  readonly inFlight: number;
  /** Events in one statement at most (a single larger request goes alone). */
  readonly maxEvents: number;
  /** Bytes of request bodies in one statement at most (idem). */
  readonly maxBytes: number;
}

/** Two statements at once keep both cores of a small database busy; more only queue there. */
export const DEFAULT_GROUP_LIMITS: GroupLimits = {
  inFlight: 2,
  maxEvents: 5000,
  maxBytes: 8 * 1024 * 1024,
};

interface Waiting {
  readonly body: Buffer;
  readonly eventCount: number;
  readonly shard: number;
  resolve(outcomes: EventOutcome[]): void;
  reject(error: unknown): void;
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

/** The JSON array of request bodies (each `{"events":[…]}`), spliced, not parsed. */
function bodiesArray(bodies: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [OPEN];
  bodies.forEach((body, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(body);
  });
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

export class AcceptedApplyGroups {
  private readonly waiting: Waiting[] = [];
  private running = 0;

  constructor(
    private readonly run: GroupRunner,
    private readonly limits: GroupLimits = DEFAULT_GROUP_LIMITS,
  ) {}

  /**
   * Applies one request body (`{"events":[…]}`, UTF-8) with the requests waiting beside it;
   * resolves with one outcome per event, in order. `shard` is the counter shard of the request
   * (counter-shards.ts: nextAtomicShard); a group counts in its first request's. Rejects with
   * the store's error (SqlError kinds of sql-errors.ts) when the database refuses or cannot be
   * reached.
   */
  apply(body: Buffer, eventCount: number, shard: number): Promise<EventOutcome[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ body, eventCount, shard, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.limits.inFlight && this.waiting.length > 0) {
      const group = this.takeGroup();
      this.running++;
      void this.settle(group).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** The oldest waiting requests, as many as the limits allow (always at least one). */
  private takeGroup(): Waiting[] {
    let events = 0;
    let bytes = 0;
    let count = 0;
    for (const w of this.waiting) {
      if (
        count > 0 &&
        (events + w.eventCount > this.limits.maxEvents ||
          bytes + w.body.length > this.limits.maxBytes)
      ) {
        break;
      }
      events += w.eventCount;
      bytes += w.body.length;
      count++;
    }
    return this.waiting.splice(0, count);
  }

  private async settle(group: readonly Waiting[]): Promise<void> {
    let rows: GroupOutcomeRow[];
    try {
      rows = await this.run(bodiesArray(group.map((w) => w.body)), group[0]?.shard ?? 0);
    } catch (error) {
      if (group.length === 1) {
        group[0]?.reject(error);
        return;
      }
      // One request the database refused must not take the others with it.
      await Promise.all(group.map((w) => this.settle([w])));
      return;
    }
    const outcomes = group.map((): EventOutcome[] => []);
    for (const row of rows) outcomes[row.request - 1]?.push(toOutcome(row));
    group.forEach((w, i) => w.resolve(outcomes[i] ?? []));
  }
}
