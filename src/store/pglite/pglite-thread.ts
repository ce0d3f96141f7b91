/**
 * The PGlite database on a thread of its own: it runs the queries the main thread posts, so the
 * embedded database and the HTTP API use different cores. Messages: `{id, kind, text, params}`
 * in, `{id, rows}` or `{id, error: {message, code}}` out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from './pglite-extensions.js';

export interface ThreadRequest {
  readonly id: number;
  readonly kind: 'query' | 'exec' | 'close' | 'listen' | 'unlisten';
  readonly text?: string;
  readonly params?: readonly unknown[];
}

export type ThreadReply =
  | { readonly id: number; readonly rows: unknown[] }
  | { readonly id: number; readonly error: { message: string; code?: string } };

/** A NOTIFY on a channel the main thread listens on (`text` of a `listen` request). */
export interface ThreadNotification {
  readonly notify: string;
  readonly payload: string;
}

const port = parentPort;
if (port === null) throw new Error('pglite-thread must run as a worker thread');

try {
  const db = await PGlite.create((workerData as { dataDir: string }).dataDir, {
    extensions: PGLITE_EXTENSIONS,
  });
  // Event timestamps without an offset are UTC (one connection, so the session setting holds).
  await db.exec("SET TIME ZONE 'UTC'");
  const unlisten = new Map<string, () => Promise<void>>();
  port.on('message', (request: ThreadRequest) => {
    const run = async (): Promise<unknown[]> => {
      switch (request.kind) {
        case 'query':
          return (await db.query(request.text ?? '', request.params as unknown[] | undefined)).rows;
        case 'exec':
          await db.exec(request.text ?? '');
          return [];
        case 'listen': {
          const channel = request.text ?? '';
          if (!unlisten.has(channel)) {
            const stop = await db.listen(channel, (payload) =>
              port.postMessage({ notify: channel, payload } satisfies ThreadNotification),
            );
            unlisten.set(channel, stop);
          }
          return [];
        }
        case 'unlisten': {
          await unlisten.get(request.text ?? '')?.();
          unlisten.delete(request.text ?? '');
          return [];
        }
        case 'close':
          if (!db.closed) await db.close();
          return [];
        default: {
          const unknownKind: never = request.kind;
          throw new Error(`unknown request ${String(unknownKind)}`);
        }
      }
    };
    run().then(
      (rows) => port.postMessage({ id: request.id, rows } satisfies ThreadReply),
      (error: unknown) => {
        const e = error as { message?: string; code?: string };
        port.postMessage({
          id: request.id,
          error: { message: e.message ?? String(error), code: e.code },
        } satisfies ThreadReply);
      },
    );
  });
  port.postMessage({ id: 0, rows: [] } satisfies ThreadReply);
} catch (error) {
  port.postMessage({
    id: 0,
    error: { message: error instanceof Error ? error.message : String(error) },
  } satisfies ThreadReply);
}
