/**
 * SqlDriver for PGlite running on a worker thread (pglite-thread.ts). PGlite executes on one
 * thread; keeping it off the main thread lets the HTTP API and the embedded database use two
 * cores. PGlite has one connection, so while a transaction runs, other statements wait for it.
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Notifications, SqlDriver, SqlQueryable } from '../sql-driver.js';
import { mapSqlError } from '../sql-errors.js';
import type { ThreadNotification, ThreadReply, ThreadRequest } from './pglite-thread.js';

interface Pending {
  resolve(rows: unknown[]): void;
  reject(error: Error): void;
}

/**
 * The thread's compiled code: beside this module in a build, or, when running from the TypeScript
 * sources (tests, `npm run dev`), from the last build (the test setup builds first). Undefined
 * when there is no build.
 */
export function pgliteThreadEntry(): URL | undefined {
  const beside = new URL('./pglite-thread.js', import.meta.url);
  if (existsSync(beside)) return beside;
  const built = new URL('../../../dist/store/pglite/pglite-thread.js', import.meta.url);
  return existsSync(built) ? built : undefined;
}

export class PgliteThreadDriver implements SqlDriver {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Settles when the running transaction ends; statements outside it wait for it. */
  private transactionDone: Promise<void> | undefined;
  private closed = false;
  private readonly listeners = new Map<string, Notifications>();

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: ThreadReply | ThreadNotification) => {
      if ('notify' in reply) {
        this.listeners.get(reply.notify)?.onNotify(reply.payload);
        return;
      }
      const waiting = this.pending.get(reply.id);
      if (waiting === undefined) return;
      this.pending.delete(reply.id);
      if ('error' in reply) {
        waiting.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      } else {
        waiting.resolve(reply.rows);
      }
    });
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', () => this.failAll(new Error('the PGlite thread stopped')));
  }

  /** Starts the thread and opens (creating on first use) the database in `dataDir`. */
  static async open(dataDir: string, entry: URL): Promise<PgliteThreadDriver> {
    const worker = new Worker(entry, { workerData: { dataDir } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (reply: ThreadReply) => {
        if (reply.id !== 0) return;
        worker.off('message', onMessage);
        if ('error' in reply) reject(new Error(`PGlite failed to open: ${reply.error.message}`));
        else resolve();
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new PgliteThreadDriver(worker);
  }

  private failAll(error: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  private send(kind: ThreadRequest['kind'], text?: string, params?: readonly unknown[]) {
    if (this.closed && kind !== 'close') return Promise.reject(new Error('PGlite is closed'));
    const id = this.nextId++;
    return new Promise<unknown[]>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, kind, text, params } satisfies ThreadRequest);
    });
  }

  private async outsideTransaction<T>(run: () => Promise<T>): Promise<T> {
    while (this.transactionDone !== undefined) await this.transactionDone;
    try {
      return await run();
    } catch (error) {
      throw mapSqlError(error);
    }
  }

  query<Row>(text: string, params?: readonly unknown[]): Promise<Row[]> {
    return this.outsideTransaction(async () => (await this.send('query', text, params)) as Row[]);
  }

  exec(sql: string): Promise<void> {
    return this.outsideTransaction(async () => {
      await this.send('exec', sql);
    });
  }

  async listen(channel: string, notifications: Notifications): Promise<() => Promise<void>> {
    if (this.listeners.has(channel)) throw new Error(`already listening on ${channel}`);
    this.listeners.set(channel, notifications);
    await this.send('listen', channel);
    return async () => {
      this.listeners.delete(channel);
      await this.send('unlisten', channel).catch(() => undefined);
    };
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    while (this.transactionDone !== undefined) await this.transactionDone;
    let done!: () => void;
    this.transactionDone = new Promise<void>((resolve) => (done = resolve));
    const tx: SqlQueryable = {
      query: async <Row>(text: string, params?: readonly unknown[]) =>
        (await this.send('query', text, params)) as Row[],
      exec: async (sql: string) => {
        await this.send('exec', sql);
      },
    };
    try {
      await this.send('exec', 'BEGIN');
      const value = await fn(tx);
      await this.send('exec', 'COMMIT');
      return value;
    } catch (error) {
      await this.send('exec', 'ROLLBACK').catch(() => undefined);
      throw mapSqlError(error);
    } finally {
      this.transactionDone = undefined;
      done();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.transactionDone !== undefined) await this.transactionDone;
    await this.send('close').catch(() => undefined);
    await this.worker.terminate();
  }
}
