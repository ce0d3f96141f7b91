/**
 * The messages between the API process and the worker processes it forks (WORKER_PROCESSES),
 * over Node's IPC channel, in one place: their shapes, how each side recognises them, and the
 * worker side's answer to a metrics request.
 *
 * child → parent: `worker-ready` once its workers run (from then on it may hold batches), and
 * `metrics-reply` to a request. parent → child: `metrics-request` with an id the reply repeats.
 */
import type { ProcessMetrics } from '../metrics.js';

/** The API process asks a worker process for its metrics. */
export interface MetricsRequest {
  readonly type: 'metrics-request';
  readonly id: string;
}

/** A worker process's metrics, answering the request with the same id. */
export interface MetricsReply {
  readonly type: 'metrics-reply';
  readonly id: string;
  readonly metrics: ProcessMetrics;
}

/** A forked worker's word that it has started its workers (and so may hold batches). */
export interface WorkerReady {
  readonly type: 'worker-ready';
}

export type ParentMessage = MetricsRequest;
export type ChildMessage = MetricsReply | WorkerReady;

function typeOf(message: unknown): unknown {
  return (message as { type?: unknown } | null)?.type;
}

export function isMetricsRequest(message: unknown): message is MetricsRequest {
  return typeOf(message) === 'metrics-request';
}

/** Whether `message` is the reply to the metrics request `id`. */
export function isMetricsReplyTo(message: unknown, id: string): message is MetricsReply {
  return typeOf(message) === 'metrics-reply' && (message as { id?: unknown }).id === id;
}

export function isWorkerReady(message: unknown): message is WorkerReady {
  return typeOf(message) === 'worker-ready';
}

/** Tells the parent, if this process was forked and is still connected, that its workers run. */
export function announceWorkerReady(): void {
  const ready: WorkerReady = { type: 'worker-ready' };
  if (process.send !== undefined && process.connected) process.send(ready);
}

/**
 * In a forked worker process: answers the parent's metrics requests with `snapshot()` until the
 * returned function is called. A snapshot that fails is reported to `onError` and not answered
 * (the parent stops waiting after its timeout); it must not become an unhandled rejection.
 */
export function answerMetricsRequests(
  snapshot: () => Promise<ProcessMetrics>,
  onError: (error: unknown) => void,
): () => void {
  const onMessage = (message: unknown): void => {
    if (!isMetricsRequest(message)) return;
    const id = message.id;
    snapshot().then((metrics) => {
      const reply: MetricsReply = { type: 'metrics-reply', id, metrics };
      if (process.connected) process.send?.(reply);
    }, onError);
  };
  process.on('message', onMessage);
  return () => {
    process.off('message', onMessage);
  };
}
