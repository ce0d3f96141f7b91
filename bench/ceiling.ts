/**
 * The raw insert ceiling: the fastest plain batched insert of a run's events into a table of the
 * same key shape as `events` (sorted `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`,
 * batches of 1000, in-batch dedupe and a global key order as the service does). On PostgreSQL
 * over 2 connections; for PGlite the same insert in-process, in memory.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { LogEvent } from '../src/log-event.js';

const CEILING_TABLE = `CREATE TABLE ceiling_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic text COLLATE "C" NOT NULL, event_id text COLLATE "C" NOT NULL, "timestamp" timestamptz NOT NULL,
  source text NOT NULL, payload jsonb NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (topic, event_id))`;
const CEILING_INDEX = `CREATE INDEX ON ceiling_events (topic, "timestamp" DESC, id DESC)`;
const CEILING_INSERT = `INSERT INTO ceiling_events (topic, event_id, "timestamp", source, payload)
  SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
  ON CONFLICT (topic, event_id) DO NOTHING`;

function sortedColumns(events: readonly LogEvent[]) {
  const seen = new Map<string, LogEvent>();
  for (const e of events) {
    const key = `${e.topic}\u0000${e.event_id}`;
    if (!seen.has(key)) seen.set(key, e);
  }
  return [...seen.values()].sort((a, b) =>
    a.topic === b.topic ? (a.event_id < b.event_id ? -1 : 1) : a.topic < b.topic ? -1 : 1,
  );
}

function ceilingBatches(events: readonly LogEvent[]) {
  const out: unknown[][] = [];
  for (let i = 0; i < events.length; i += 1000) {
    const slice = sortedColumns(events.slice(i, i + 1000));
    out.push([
      slice.map((e) => e.topic),
      slice.map((e) => e.event_id),
      slice.map((e) => e.timestamp),
      slice.map((e) => e.source),
      slice.map((e) => JSON.stringify(e.payload)),
    ]);
  }
  return out;
}

/** Events per second into the PostgreSQL database at `url` (a table it creates and drops). */
export async function postgresCeiling(url: string, events: readonly LogEvent[]): Promise<number> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('DROP TABLE IF EXISTS ceiling_events');
  await setup.query(CEILING_TABLE);
  await setup.query(CEILING_INDEX);
  const batches = ceilingBatches(events);
  const clients = [
    new pg.Client({ connectionString: url }),
    new pg.Client({ connectionString: url }),
  ];
  await Promise.all(clients.map((c) => c.connect()));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (client) => {
      for (;;) {
        const params = batches[next++];
        if (params === undefined) return;
        for (;;) {
          try {
            await client.query({ name: 'ceiling', text: CEILING_INSERT, values: params });
            break;
          } catch (error) {
            if ((error as { code?: string }).code !== '40P01') throw error;
          }
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(clients.map((c) => c.end()));
  await setup.query('DROP TABLE ceiling_events');
  await setup.end();
  return events.length / seconds;
}

/** Events per second into an in-memory PGlite database, on this thread. */
export async function pgliteCeiling(events: readonly LogEvent[]): Promise<number> {
  const db = await PGlite.create('memory://');
  await db.exec(CEILING_TABLE);
  await db.exec(CEILING_INDEX);
  const batches = ceilingBatches(events);
  const started = performance.now();
  for (const params of batches) await db.query(CEILING_INSERT, params);
  const seconds = (performance.now() - started) / 1000;
  await db.close();
  return events.length / seconds;
}
