/**
 * The publishing client behind the CLI and the benchmark: sends a workload in batches with a fixed
 * number of requests in flight, optionally at a target rate, retrying 503 and network failures with
 * exponential backoff (the answers the API tells a client to retry), and records the latency of
 * every successful request.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import type { LogEvent } from '../log-event.js';

/** One request carrying a batch, in whatever wire format: path (with query) relative to the URL. */
export interface EncodedRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

export interface PublishOptions {
  readonly url: string;
  readonly batch: number;
  readonly concurrency: number;
  /** Events per second to aim for; unset = as fast as the server answers. */
  readonly rate?: number | undefined;
  readonly atomic?: boolean;
  /** Sent as `Authorization: Bearer` when the aggregator has API keys. */
  readonly apiKey?: string | undefined;
  /** Give up on a batch after this many attempts. */
  readonly maxAttempts?: number;
  /**
   * Statuses after which a batch is sent again; a network failure always is. Unset = 408, 429,
   * 500, 502, 503 and 504. Any other non-2xx answer is recorded in `failures` and the batch is
   * not sent again: a caller for whom an unexpected 5xx is a bug to see, not to ride out (a test),
   * narrows the set to 503.
   */
  readonly retryStatuses?: ReadonlySet<number>;
  /**
   * Builds the request for a batch in another wire format (bench/formats.ts); unset = the
   * envelope on POST /publish. Any 2xx answer counts as accepted.
   */
  readonly encode?: (events: readonly LogEvent[]) => EncodedRequest;
  readonly onProgress?: (progress: PublishProgress) => void;
  readonly signal?: AbortSignal;
}

export interface PublishProgress {
  readonly sentEvents: number;
  /** Requests (batches) answered 2xx so far. */
  readonly acceptedRequests: number;
  readonly totalEvents: number;
  readonly retries: number;
  readonly elapsedMs: number;
}

export interface PublishReport extends PublishProgress {
  readonly requests: number;
  /** performance.now() when the first request went out (the bodies are serialised before). */
  readonly startedAt: number;
  /** Milliseconds of each successful request, in completion order. */
  readonly latenciesMs: number[];
  /** Requests refused for good (an answer not in `retryStatuses`), with the server's answer. */
  readonly failures: { status: number; body: string }[];
}

export class PublishError extends Error {}

const RETRYABLE: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

export async function publishEvents(
  events: readonly LogEvent[],
  options: PublishOptions,
): Promise<PublishReport> {
  const base = new URL(options.url);
  const prefix = base.pathname.replace(/\/$/, '');
  const envelope = (slice: readonly LogEvent[]): EncodedRequest => ({
    path: `/publish${options.atomic ? '?atomic=true' : ''}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ events: slice }),
  });
  const encode = options.encode ?? envelope;
  // A keep-alive pool with one connection per request in flight: far less client CPU than fetch,
  // which matters when the load generator shares the machine with the service it measures.
  const pool = new Pool(base.origin, { connections: Math.max(1, options.concurrency) });
  const batches: EncodedRequest[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < events.length; i += options.batch) {
    const slice = events.slice(i, i + options.batch);
    batches.push(encode(slice));
    sizes.push(slice.length);
  }
  const started = performance.now();
  const latenciesMs: number[] = [];
  const failures: { status: number; body: string }[] = [];
  const maxAttempts = options.maxAttempts ?? 30;
  const retryable = options.retryStatuses ?? RETRYABLE;
  let next = 0;
  let sentEvents = 0;
  let acceptedRequests = 0;
  let retries = 0;
  let scheduledEvents = 0;

  const progress = (): PublishProgress => ({
    sentEvents,
    acceptedRequests,
    totalEvents: events.length,
    retries,
    elapsedMs: performance.now() - started,
  });

  const send = async (index: number): Promise<void> => {
    const batch = batches[index];
    const size = sizes[index] ?? 0;
    if (batch === undefined) return;
    for (let attempt = 1; ; attempt++) {
      if (options.signal?.aborted) throw new PublishError('aborted');
      const t0 = performance.now();
      let status = 0;
      let text = '';
      let retryAfterMs = 0;
      try {
        const response = await pool.request({
          path: `${prefix}${batch.path}`,
          method: 'POST',
          headers: {
            ...batch.headers,
            ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
          },
          body: batch.body,
          signal: options.signal,
        });
        status = response.statusCode;
        text = await response.body.text();
        retryAfterMs = Number(response.headers['retry-after'] ?? 0) * 1000;
      } catch (error) {
        if (options.signal?.aborted) throw new PublishError('aborted');
        text = error instanceof Error ? error.message : String(error);
      }
      if (status >= 200 && status < 300) {
        latenciesMs.push(performance.now() - t0);
        sentEvents += size;
        acceptedRequests++;
        return;
      }
      if (status !== 0 && !retryable.has(status)) {
        failures.push({ status, body: text.slice(0, 500) });
        return;
      }
      if (attempt >= maxAttempts) {
        throw new PublishError(`gave up after ${attempt} attempts: ${status || text}`);
      }
      retries++;
      const backoff = Math.min(50 * 2 ** (attempt - 1), 5000) * (0.5 + Math.random() / 2);
      await sleep(Math.max(backoff, retryAfterMs));
    }
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next++;
      if (index >= batches.length) return;
      if (options.rate !== undefined && options.rate > 0) {
        // Pace by schedule: batch i may start once its events fit the target rate.
        const due = started + (scheduledEvents / options.rate) * 1000;
        scheduledEvents += sizes[index] ?? 0;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await send(index);
      options.onProgress?.(progress());
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  } finally {
    await pool.close();
  }
  return { ...progress(), requests: batches.length, startedAt: started, latenciesMs, failures };
}

/** The q-quantile (0..1) of `values` by nearest rank; 0 for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}
