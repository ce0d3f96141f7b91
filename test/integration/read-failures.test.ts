/**
 * A failed read is the service's failure, never "the database refused the events": a read
 * PostgreSQL fails on a row answers 500 AGG_ERR_INTERNAL, one it cancels (a statement timeout)
 * 503 AGG_ERR_STORE_UNAVAILABLE; the listing and the histogram alike. And the live stream does not lose a whole announced range to one
 * row it cannot read: the others of the range are delivered. On every backend.
 *
 * The rows are made unreadable for real: `events` becomes an updatable view over the table whose
 * filter raises a PostgreSQL error, with the SQLSTATE the event id names, whenever it reads such
 * a row. Writes go through the view to the table untouched, so the events are stored and counted.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { PgliteDriver } from '../../src/store/pglite/pglite-driver.js';
import { event, publish, request, stats, waitForDrain } from '../helpers/http.js';
import { openStream, type SseStream } from '../helpers/sse.js';
import {
  createResources,
  startTestService,
  suiteBackends,
  type TestService,
} from '../helpers/test-service.js';

/** Reading a row whose event_id starts with `unreadable-<SQLSTATE>` raises that SQLSTATE. */
const UNREADABLE_ROWS = `
CREATE FUNCTION test_readable(event_id text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF event_id LIKE 'unreadable-%' THEN
    RAISE EXCEPTION 'test: row % cannot be read', event_id
      USING ERRCODE = substr(event_id, 12, 5);
  END IF;
  RETURN true;
END $$;
ALTER TABLE events RENAME TO events_table;
CREATE VIEW events AS SELECT * FROM events_table WHERE test_readable(event_id);
`;

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `read failures on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService | undefined;
      let stream: SseStream | undefined;
      afterEach(async () => {
        stream?.close();
        stream = undefined;
        await svc?.close();
        svc = undefined;
      });

      async function startWithUnreadableRows(): Promise<TestService> {
        const resources = await createResources(backend.name);
        if (resources.databaseUrl !== undefined) {
          const client = new pg.Client({ connectionString: resources.databaseUrl });
          await client.connect();
          await client.query(UNREADABLE_ROWS);
          await client.end();
        } else {
          const driver = await PgliteDriver.open(resources.env.DATA_DIR ?? '');
          await driver.exec(UNREADABLE_ROWS);
          await driver.close();
        }
        // `events` is a view here, which cannot carry the search indexes the service would build.
        return startTestService(backend.name, { SEARCH_INDEX: 'off' }, resources);
      }

      it('a read failing on a row answers 500 or 503, never 422, listing and histogram; the stream delivers the rest', async () => {
        svc = await startWithUnreadableRows();
        const base = svc.url;
        const topic = `test-${randomUUID()}`;
        const slow = `test-${randomUUID()}`;
        stream = await openStream(`${base}/events/stream?topic=${topic}`);

        // One request, so one transaction and one announced range with the bad row inside.
        const sent = await publish(base, [
          event(topic, 'ok-1'),
          event(topic, 'unreadable-22P02'),
          event(topic, 'ok-2'),
        ]);
        expect(sent.status).toBeLessThan(300);
        const delivered = await stream.waitFor(2);
        expect(delivered.map((e) => e.data.event_id)).toEqual(['ok-1', 'ok-2']);

        // The listing and the histogram over the same rows fail alike.
        const day = 'since=2024-05-01T00:00:00Z&until=2024-05-02T00:00:00Z';
        for (const path of [`/events?topic=${topic}`, `/events/histogram?topic=${topic}&${day}`]) {
          const failed = await request<{ code: string }>(`${base}${path}`);
          expect(failed.status, path).toBe(500);
          expect(failed.body.code, path).toBe('AGG_ERR_INTERNAL');
        }

        expect((await publish(base, [event(slow, 'unreadable-57014')])).status).toBeLessThan(300);
        await waitForDrain(base, 4);
        for (const path of [`/events?topic=${slow}`, `/events/histogram?topic=${slow}&${day}`]) {
          const cancelled = await request<{ code: string }>(`${base}${path}`);
          expect(cancelled.status, path).toBe(503);
          expect(cancelled.body.code, path).toBe('AGG_ERR_STORE_UNAVAILABLE');
          expect(cancelled.headers.get('retry-after'), path).toBe('1');
        }

        // Nothing was lost: all four are stored and counted; a later event still streams.
        expect(await stats(base)).toMatchObject({ received: 4, unique_processed: 4 });
        expect((await publish(base, [event(topic, 'ok-3')])).status).toBeLessThan(300);
        const after = await stream.waitFor(3);
        expect(after.map((e) => e.data.event_id)).toEqual(['ok-1', 'ok-2', 'ok-3']);
        expect(stream.events).toHaveLength(3);
      });
    },
  );
}
