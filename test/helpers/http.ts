/** Small HTTP helpers for tests that talk to a running service with fetch. */
import { setTimeout as sleep } from 'node:timers/promises';
import { publishEvents, type PublishReport } from '../../src/cli/publisher.js';
import type { LogEvent } from '../../src/log-event.js';

const ONLY_503: ReadonlySet<number> = new Set([503]);

export interface Reply<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function request<T = unknown>(
  url: string,
  init: {
    method?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.rawBody !== undefined) body = init.rawBody;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, { method: init.method ?? 'GET', body, headers });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body: parsed as T, headers: response.headers };
}

export function publish(base: string, events: readonly unknown[], query = '') {
  return request<{ accepted: number; queued: number; processed?: number; duplicates?: number }>(
    `${base}/publish${query}`,
    { method: 'POST', body: { events } },
  );
}

export interface Stats {
  received: number;
  unique_processed: number;
  duplicate_dropped: number;
  expired: number;
  topics: string[];
  uptime_seconds: number;
  dedup_rate_percent: number;
}

export async function stats(base: string): Promise<Stats> {
  return (await request<Stats>(`${base}/stats`)).body;
}

/**
 * Waits until the queue is empty and `received` reached `expectedReceived`; returns the stats.
 * Fails after `timeoutMs` with what it saw, so a hang reads as a clear assertion.
 */
export async function waitForDrain(
  base: string,
  expectedReceived: number,
  timeoutMs = 60_000,
): Promise<Stats> {
  const deadline = Date.now() + timeoutMs;
  let last: Stats | undefined;
  let queued = -1;
  while (Date.now() < deadline) {
    const q = await request<{ queue_size: number }>(`${base}/queue/stats`);
    queued = q.body.queue_size;
    last = await stats(base);
    if (queued === 0 && last.received >= expectedReceived) return last;
    await sleep(50);
  }
  throw new Error(
    `queue did not drain: queue_size=${queued}, received=${last?.received} (expected ${expectedReceived})`,
  );
}

export function event(topic: string, id: string | number, extra: Partial<LogEvent> = {}): LogEvent {
  return {
    topic,
    event_id: String(id),
    timestamp: '2024-05-01T12:00:00Z',
    source: 'test',
    payload: { n: id },
    ...extra,
  };
}

/**
 * Publishes `events` in batches of `batch` with `concurrency` requests in flight, through the
 * CLI's publisher (src/cli/publisher.ts), which sends a batch again on 503 or a network error
 * (the answers a publisher is told to retry). Any other answer fails the run once it ends: in a
 * test a 500 or a 4xx is a bug to see, not a hiccup to ride out.
 */
export async function publishAll(
  base: string,
  events: readonly LogEvent[],
  options: {
    batch: number;
    concurrency: number;
    atomic?: boolean;
    /** Set to the batches answered 200 so far, for tests that act mid-run. */
    progress?: { done: number };
  },
): Promise<PublishReport> {
  const { progress } = options;
  const report = await publishEvents(events, {
    url: base,
    batch: options.batch,
    concurrency: options.concurrency,
    atomic: options.atomic ?? false,
    retryStatuses: ONLY_503,
    ...(progress === undefined ? {} : { onProgress: (p) => (progress.done = p.acceptedRequests) }),
  });
  const [refused] = report.failures;
  if (refused !== undefined) {
    throw new Error(`publish answered ${refused.status}: ${refused.body}`);
  }
  return report;
}

/** Polls GET /health until it answers `status`; resolves with that answer. */
export async function healthBecomes<T = Record<string, unknown>>(
  base: string,
  status: number,
  timeoutMs = 30_000,
): Promise<Reply<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await request<T>(`${base}/health`);
    if (reply.status === status) return reply;
    if (Date.now() > deadline) {
      throw new Error(`/health stayed ${reply.status}: ${JSON.stringify(reply.body)}`);
    }
    await sleep(100);
  }
}
