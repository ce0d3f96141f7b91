/**
 * Worker processes forked beside the API process (WORKER_PROCESSES), so a single `npm start` uses
 * more than one core. Each child is this same program with ROLE=worker; one that dies is started
 * again; `stop` passes SIGTERM on and waits, then kills what is left.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { ProcessMetrics } from '../metrics.js';
import { isMetricsReplyTo, isWorkerReady, type MetricsRequest } from './worker-ipc.js';

const METRICS_TIMEOUT_MS = 1000;

const ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));
const RESTART_DELAY_MS = 1000;

export class WorkerProcesses {
  private readonly children = new Map<number, ChildProcess>();
  /** Children that have started their workers (and so may hold batches). */
  private readonly ready = new WeakSet<ChildProcess>();
  private stopping = false;

  constructor(
    private readonly count: number,
    private readonly instanceId: string,
    private readonly logger: Logger,
  ) {}

  /** Children currently alive. */
  get alive(): number {
    return this.children.size;
  }

  start(): void {
    for (let i = 0; i < this.count; i++) this.spawn(i);
  }

  private spawn(index: number): void {
    const child = fork(ENTRY, [], {
      env: {
        ...process.env,
        ROLE: 'worker',
        WORKER_PROCESSES: '0',
        INSTANCE_ID: `${this.instanceId}-w${index}`,
      },
      stdio: 'inherit',
    });
    this.children.set(index, child);
    child.on('message', (message: unknown) => {
      if (isWorkerReady(message)) this.ready.add(child);
    });
    child.once('exit', (code, signal) => {
      this.children.delete(index);
      if (this.stopping) return;
      this.logger.error({ worker: index, code, signal }, 'worker process died; starting it again');
      setTimeout(() => {
        if (!this.stopping) this.spawn(index);
      }, RESTART_DELAY_MS).unref();
    });
  }

  /** Each live child's metrics; a child that does not answer within a second is left out. */
  collectMetrics(): Promise<ProcessMetrics[]> {
    const replies = [...this.children.values()].map(
      (child) =>
        new Promise<ProcessMetrics | undefined>((resolve) => {
          const id = randomUUID();
          const onMessage = (message: unknown): void => {
            if (isMetricsReplyTo(message, id)) done(message.metrics);
          };
          const timer = setTimeout(() => done(undefined), METRICS_TIMEOUT_MS);
          const done = (metrics: ProcessMetrics | undefined): void => {
            clearTimeout(timer);
            child.off('message', onMessage);
            resolve(metrics);
          };
          child.on('message', onMessage);
          const request: MetricsRequest = { type: 'metrics-request', id };
          if (!child.connected) done(undefined);
          else child.send(request, (error) => error && done(undefined));
        }),
    );
    return Promise.all(replies).then((all) => all.filter((m) => m !== undefined));
  }

  /** Asks every child to finish its batch and exit; resolves true if all did within the time. */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    const exits = [...this.children.values()].map(
      (child) =>
        new Promise<boolean>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve(true);
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve(false);
          }, timeoutMs);
          child.once('exit', (code) => {
            clearTimeout(timer);
            // One stopped while still starting (even by the signal itself, before its handlers
            // were in place) held no batch.
            resolve(code === 0 || !this.ready.has(child));
          });
          child.kill('SIGTERM');
        }),
    );
    return (await Promise.all(exits)).every(Boolean);
  }
}
