/** What the HTTP routes need from the rest of the service, handed to them by `buildServer`. */
import type { Config } from '../config.js';
import type { ProcessMetrics, ProcessMetricsRegistry } from '../metrics.js';
import type { Queue } from '../queue/queue.js';
import type { Store } from '../store/store.js';

export interface WorkerStatus {
  /** Worker loops running in this process. */
  readonly running: number;
  readonly enabled: boolean;
}

export interface AppContext {
  readonly config: Config;
  readonly store: Store;
  readonly queue: Queue;
  readonly workers: () => WorkerStatus;
  /** `performance.now()`-style milliseconds at which the process started serving. */
  readonly startedAt: number;
  /** This process's metrics. */
  readonly metrics: ProcessMetricsRegistry;
  /** The metrics of the worker processes this process forked, if any. */
  readonly childMetrics: () => Promise<ProcessMetrics[]>;
}

export function uptimeSeconds(ctx: Pick<AppContext, 'startedAt'>): number {
  return Math.round((Date.now() - ctx.startedAt) / 10) / 100;
}

/**
 * The context a route receives: the service's context with only the part of the store the route
 * uses (a Store part from store.ts, or several joined with `&`).
 */
export type RouteContext<S> = StorelessRouteContext & { readonly store: S };

/** The context of a route (or helper) that needs nothing of the store. */
export type StorelessRouteContext = Omit<AppContext, 'store'>;
