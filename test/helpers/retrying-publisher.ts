/**
 * A publisher that behaves as the API asks publishers to: a batch is sent until it is answered
 * 200, again after a network error or a 5xx, with back-off. It keeps a ledger of what happened to
 * every batch, so a fault test can tell acknowledged events (which must all be stored) from
 * attempts whose outcome the publisher cannot know (the answer was lost, so the batch may or may
 * not have been queued before it was sent again).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogEvent } from '../../src/log-event.js';

/** Longest wait between two attempts of one batch. */
const MAX_BACKOFF_MS = 500;
/** A request not answered within this time counts as an answer lost. */
const REQUEST_TIMEOUT_MS = 30_000;
/** The publisher gives up (and `done` rejects) when a batch still fails after this long. */
const DEADLINE_MS = 240_000;

export interface PublisherOptions {
  /** Events per request. */
  readonly batch: number;
  /** Requests in flight. */
  readonly concurrency: number;
  /** Told of every attempt's outcome: the HTTP status, 0 for an answer lost, -1 for refused. */
  readonly onAnswer?: ((status: number) => void) | undefined;
}

export interface PublisherReport {
  /** Requests sent, retries included. */
  readonly attempts: number;
  /** Answers by status (0: no answer: connection refused, reset or timed out). */
  readonly statuses: Readonly<Record<number, number>>;
  /** Connections refused: the request never reached a server, nothing can have been queued. */
  readonly refused: number;
  /** Attempts whose answer was lost after the request may have reached the server. */
  readonly answersLost: number;
  /** Why answers were lost (error codes or messages), with counts. */
  readonly lostReasons: Readonly<Record<string, number>>;
  /**
   * Events in attempts that failed in a way that leaves their fate unknown (answer lost or 5xx):
   * each may have been queued although its batch was sent again. `received` can exceed the
   * events published by at most this many.
   */
  readonly uncertainEvents: number;
}

export interface Publishing {
  /** Batches answered 200 so far (it grows while the run goes on). */
  readonly acknowledged: () => number;
  /** The events of the batches answered 200 so far. */
  acknowledgedEvents(): LogEvent[];
  /** Resolves once every batch is answered 200. */
  readonly done: Promise<PublisherReport>;
}

function isRefused(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === 'ECONNREFUSED';
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.name : String(error);
}

/** Starts publishing `events` to `${baseUrl}/publish`; see Publishing. */
export function startPublishing(
  baseUrl: string,
  events: readonly LogEvent[],
  options: PublisherOptions,
): Publishing {
  const batches: LogEvent[][] = [];
  for (let i = 0; i < events.length; i += options.batch) {
    batches.push(events.slice(i, i + options.batch));
  }
  const acked: boolean[] = batches.map(() => false);
  const statuses: Record<number, number> = {};
  let acknowledged = 0;
  let attempts = 0;
  let refused = 0;
  let answersLost = 0;
  const lostReasons: Record<string, number> = {};
  let uncertainEvents = 0;
  let next = 0;
  const deadline = Date.now() + DEADLINE_MS;

  const send = async (batch: LogEvent[]): Promise<number> => {
    attempts++;
    try {
      const response = await fetch(`${baseUrl}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events: batch }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      return response.status;
    } catch (error) {
      if (isRefused(error)) refused++;
      else {
        answersLost++;
        const reason = describe(error);
        lostReasons[reason] = (lostReasons[reason] ?? 0) + 1;
      }
      return isRefused(error) ? -1 : 0;
    }
  };

  const worker = async () => {
    for (;;) {
      const index = next++;
      const batch = batches[index];
      if (batch === undefined) return;
      for (let attempt = 0; ; attempt++) {
        const status = await send(batch);
        options.onAnswer?.(status);
        const key = Math.max(status, 0);
        statuses[key] = (statuses[key] ?? 0) + 1;
        if (status === 200) {
          acked[index] = true;
          acknowledged++;
          break;
        }
        if (status >= 400 && status < 500) {
          throw new Error(`publish answered ${status}: a valid batch was refused`);
        }
        // Refused connections never reached a server; anything else may have been queued.
        if (status !== -1) uncertainEvents += batch.length;
        if (Date.now() > deadline) throw new Error(`publisher: batch ${index} kept failing`);
        await sleep(Math.min(20 * 2 ** attempt, MAX_BACKOFF_MS));
      }
    }
  };

  const done = Promise.all(Array.from({ length: options.concurrency }, worker)).then(() => ({
    attempts,
    statuses: { ...statuses },
    refused,
    answersLost,
    lostReasons: { ...lostReasons },
    uncertainEvents,
  }));
  return {
    acknowledged: () => acknowledged,
    acknowledgedEvents: () => batches.filter((_, i) => acked[i]).flat(),
    done,
  };
}
