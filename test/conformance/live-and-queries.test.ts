/**
 * Subscribing and looking: the live stream (GET /events/stream) delivers each newly stored event
 * once, filtered by topic, and resumes after Last-Event-ID with no gap and no repeat; a reader too
 * slow to keep up is cut off instead of growing memory. GET /events filters by source and event
 * time, orders both ways, and pages by a cursor that neither skips nor repeats while events
 * arrive; GET /topics has each topic's counts and latest event time. On every backend.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { event, publish, publishAll, request, waitForDrain } from '../helpers/http.js';
import { spawnService } from '../helpers/process-service.js';
import { openStream, type SseStream } from '../helpers/sse.js';
import {
  createResources,
  startTestService,
  suiteBackends,
  type TestService,
} from '../helpers/test-service.js';

interface Row {
  id: number;
  topic: string;
  event_id: string;
  timestamp: string;
  source: string;
}

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `live stream and queries on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService | undefined;
      const streams: SseStream[] = [];
      afterEach(async () => {
        for (const s of streams.splice(0)) s.close();
        await svc?.close();
        svc = undefined;
      });

      async function stream(
        query = '',
        headers: Record<string, string> = {},
        options: { reconnect?: boolean } = {},
      ) {
        const s = await openStream(`${svc?.url}/events/stream${query}`, headers, options);
        streams.push(s);
        return s;
      }

      it('each stored event reaches each subscriber once, within a second, by topic', async () => {
        svc = await startTestService(backend.name);
        const run = randomUUID().slice(0, 6);
        const [x, y] = [`x-${run}`, `y-${run}`];
        const all = await stream();
        const onlyX = await stream(`?topic=${x}`);
        const both = await stream(`?topic=${x}&topic=${y}`);
        // Duplicates inside and across requests are stored, and so streamed, once.
        const events = [
          ...Array.from({ length: 300 }, (_, i) => event(x, i % 200)),
          ...Array.from({ length: 100 }, (_, i) => event(y, i)),
        ];
        await publishAll(svc.url, events, { batch: 50, concurrency: 4 });
        await waitForDrain(svc.url, 400);
        const received = await all.waitFor(300, 5000);
        await sleep(300);
        expect(all.events).toHaveLength(300);
        const keys = all.events.map((e) => `${String(e.data.topic)}/${String(e.data.event_id)}`);
        expect(new Set(keys).size).toBe(300);
        expect(new Set(received.map((e) => e.id)).size).toBe(300);
        for (const e of all.events) expect(e.data.id).toBe(e.id);
        expect(onlyX.events).toHaveLength(200);
        expect(onlyX.events.every((e) => e.data.topic === x)).toBe(true);
        expect(both.events).toHaveLength(300);
        // Each event was on the stream within a second of being stored (processed_at).
        const lags = all.events.map((e) => e.receivedAt - Date.parse(String(e.data.processed_at)));
        expect(Math.max(...lags)).toBeLessThan(1000);
      });

      it('a reconnect with Last-Event-ID resumes right after that event', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const first = await stream();
        await publishAll(
          svc.url,
          Array.from({ length: 120 }, (_, i) => event(topic, i)),
          {
            batch: 20,
            concurrency: 2,
          },
        );
        const seen = await first.waitFor(120);
        first.close();
        const lastSeen = seen[49]?.id ?? 0;
        // While disconnected, more events are stored.
        await publishAll(
          svc.url,
          Array.from({ length: 30 }, (_, i) => event(topic, 1000 + i)),
          {
            batch: 10,
            concurrency: 1,
          },
        );
        await waitForDrain(svc.url, 150);
        const resumed = await stream('', { 'last-event-id': String(lastSeen) });
        const rest = await resumed.waitFor(100);
        await sleep(300);
        expect(resumed.events).toHaveLength(100);
        expect(rest.map((e) => e.id)).toEqual([
          ...seen.slice(50).map((e) => e.id),
          ...rest.slice(70).map((e) => e.id),
        ]);
        const ids = new Set([...seen.slice(0, 50), ...rest].map((e) => e.data.event_id));
        expect(ids.size).toBe(150);

        // From before anything this process delivered: read back from the table by id.
        const fromStart = await stream(`?topic=${topic}&last_event_id=0`);
        await fromStart.waitFor(150);
        await sleep(200);
        expect(fromStart.events).toHaveLength(150);
        // And it goes on live.
        await publish(svc.url, [event(topic, 'live')]);
        const [live] = (await fromStart.waitFor(151)).slice(150);
        expect(live?.data.event_id).toBe('live');
      });

      it('a subscriber that does not read is cut off; the others are not', async () => {
        svc = await startTestService(backend.name);
        const url = new URL(svc.url);
        const socket = connect(Number(url.port), url.hostname);
        await new Promise((resolve) => socket.once('connect', resolve));
        socket.write(`GET /events/stream HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
        socket.pause();
        let closed = false;
        socket.once('close', () => (closed = true));
        // A reader that keeps up; like EventSource it reconnects should it be cut off too (on a
        // busy machine the test process itself can fall 4 MiB behind).
        const reader = await stream('', {}, { reconnect: true });
        await sleep(200);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const blob = 'x'.repeat(8000);
        const events = Array.from({ length: 2000 }, (_, i) =>
          event(topic, i, { payload: { blob } }),
        );
        await publishAll(svc.url, events, { batch: 100, concurrency: 4 });
        await reader.waitFor(2000, 30_000).catch(async (error: unknown) => {
          const text = await (await fetch(`${svc?.url}/metrics`)).text();
          const subs = /^aggregator_live_subscribers (\d+)$/m.exec(text)?.[1];
          const stats = await (await fetch(`${svc?.url}/stats`)).text();
          throw new Error(
            `${String(error)} after ${reader.reconnects()} reconnects; subscribers ${subs}; closed ${closed}; last id ${reader.events.at(-1)?.id}; ${stats}`,
          );
        });
        const metrics = async () =>
          (await (await fetch(`${svc?.url}/metrics`)).text()).match(
            /^aggregator_live_subscribers (\d+)$/m,
          )?.[1];
        // The server gave up on the paused socket: one subscriber is left.
        await expect.poll(metrics, { timeout: 10_000 }).toBe('1');
        socket.resume();
        await expect.poll(() => closed, { timeout: 10_000 }).toBe(true);
        // Whatever reconnects it took, each event exactly once.
        expect(reader.events).toHaveLength(2000);
        expect(new Set(reader.events.map((e) => e.id)).size).toBe(2000);
      });

      it('GET /events filters by source and event time, orders both ways, pages by cursor', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const at = (minute: number) => new Date(Date.UTC(2024, 4, 1, 12, minute)).toISOString();
        const events = Array.from({ length: 50 }, (_, i) =>
          event(topic, i, { timestamp: at(i), source: i % 2 === 0 ? 'even' : 'odd' }),
        );
        await publishAll(svc.url, events, { batch: 10, concurrency: 2 });
        await waitForDrain(svc.url, 50);
        const list = async (query: string) => {
          const reply = await request<Row[]>(`${svc?.url}/events?topic=${topic}&${query}`);
          expect(reply.status, JSON.stringify(reply.body)).toBe(200);
          return reply;
        };
        const odd = await list('source=odd&limit=100');
        expect(odd.body).toHaveLength(25);
        expect(odd.body.every((e) => e.source === 'odd')).toBe(true);
        const window = await list(`since=${at(10)}&until=${at(20)}&order=asc`);
        expect(window.body.map((e) => e.event_id)).toEqual(
          Array.from({ length: 10 }, (_, i) => String(10 + i)),
        );
        expect(window.headers.get('x-next-cursor')).toBeNull();

        // Page newest first, 7 at a time, while newer events keep arriving between pages.
        const seen: string[] = [];
        let after: string | null = null;
        for (let page = 0; page < 20; page++) {
          const reply = await list(`limit=7${after === null ? '' : `&after=${after}`}`);
          seen.push(...reply.body.map((e) => e.event_id));
          after = reply.headers.get('x-next-cursor');
          await publish(svc.url, [event(topic, `new-${page}`, { timestamp: at(100 + page) })]);
          await waitForDrain(svc.url, 51 + page);
          if (after === null) break;
        }
        expect(seen.filter((id) => id.startsWith('new-'))).toEqual([]);
        expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => String(49 - i)));

        const asc = await list('order=asc&limit=5');
        const cursor = asc.headers.get('x-next-cursor') ?? '';
        const next = await list(`order=asc&limit=5&after=${cursor}`);
        expect(next.body.map((e) => e.event_id)).toEqual(['5', '6', '7', '8', '9']);
        for (const [query, field] of [
          [`after=${cursor}`, 'order'],
          ['after=not-a-cursor', 'after'],
          ['since=yesterday', 'since'],
          ['order=sideways', 'order'],
        ] as const) {
          const bad = await request<{ code: string; details: { field: string }[] }>(
            `${svc.url}/events?${query}`,
          );
          expect(bad.status, query).toBe(422);
          expect(bad.body.code).toBe('AGG_ERR_INVALID_QUERY');
          expect(JSON.stringify(bad.body.details)).toContain(field);
        }
      });

      it('GET /topics has per-topic counts and the latest event time', async () => {
        svc = await startTestService(backend.name);
        const run = randomUUID().slice(0, 6);
        const [a, b] = [`a-${run}`, `b-${run}`];
        await publishAll(
          svc.url,
          [
            event(a, 1, { timestamp: '2024-05-01T10:00:00Z' }),
            event(a, 1, { timestamp: '2024-05-01T10:00:00Z' }),
            event(a, 2, { timestamp: '2024-05-02T10:00:00.5Z' }),
            event(b, 1, { timestamp: '2023-01-01T00:00:00Z' }),
          ],
          { batch: 2, concurrency: 1 },
        );
        await waitForDrain(svc.url, 4);
        const topics = await request<Record<string, unknown>[]>(`${svc.url}/topics`);
        expect(topics.body).toEqual([
          {
            topic: a,
            events: 2,
            received: 3,
            unique_processed: 2,
            duplicate_dropped: 1,
            conflicting_duplicates: 0,
            rejected: 0,
            expired: 0,
            last_event_at: '2024-05-02T10:00:00.500000Z',
          },
          {
            topic: b,
            events: 1,
            received: 1,
            unique_processed: 1,
            duplicate_dropped: 0,
            conflicting_duplicates: 0,
            rejected: 0,
            expired: 0,
            last_event_at: '2023-01-01T00:00:00.000000Z',
          },
        ]);
      });
    },
  );
}

const postgres = suiteBackends((b) => b === 'postgres-redis')[0];
describe.skipIf(postgres === undefined || postgres.skip !== undefined)(
  `live stream with two worker processes${postgres?.skip ? ` (SKIPPED: ${postgres.skip})` : ''}`,
  () => {
    it('events stored by any worker process reach the stream of the API process once', async () => {
      const resources = await createResources('postgres-redis');
      const service = await spawnService({ ...resources.env, WORKER_PROCESSES: '2' });
      try {
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const live = await openStream(`${service.url}/events/stream?topic=${topic}`);
        const w = makeWorkload({ total: 3000, dupRate: 0.35, topics: [topic], idPrefix: topic });
        await publishAll(service.url, w.events, { batch: 50, concurrency: 4 });
        await waitForDrain(service.url, 3000);
        await live.waitFor(w.unique);
        await sleep(300);
        live.close();
        expect(live.events).toHaveLength(w.unique);
        expect(new Set(live.events.map((e) => e.data.event_id)).size).toBe(w.unique);
      } finally {
        await service.stop('SIGTERM');
        await resources.dispose();
      }
    });
  },
);

const postgresInbox = suiteBackends((b) => b === 'postgres-inbox')[0];
describe.skipIf(postgresInbox === undefined || postgresInbox.skip !== undefined)(
  `live stream when its LISTEN connection is lost${postgresInbox?.skip ? ` (SKIPPED: ${postgresInbox.skip})` : ''}`,
  () => {
    it('catches up what was stored meanwhile, and nothing older', async () => {
      const svc = await startTestService('postgres-inbox');
      const db = new pg.Client({ connectionString: svc.resources.databaseUrl });
      await db.connect();
      try {
        const topic = `t-${randomUUID().slice(0, 8)}`;
        // Stored before anyone listened: never part of the stream.
        await publishAll(
          svc.url,
          Array.from({ length: 500 }, (_, i) => event(topic, `old-${i}`)),
          {
            batch: 100,
            concurrency: 2,
          },
        );
        await waitForDrain(svc.url, 500);
        const live = await openStream(`${svc.url}/events/stream`);
        await publish(svc.url, [event(topic, 'a'), event(topic, 'b')]);
        await live.waitFor(2);
        const killed = await db.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name LIKE '%:listen'`,
        );
        expect(killed.rowCount).toBeGreaterThan(0);
        await publish(svc.url, [event(topic, 'c')]);
        await live.waitFor(3, 15_000);
        await publish(svc.url, [event(topic, 'd')]);
        await live.waitFor(4, 15_000);
        await sleep(500);
        live.close();
        expect(live.events.map((e) => e.data.event_id)).toEqual(['a', 'b', 'c', 'd']);
      } finally {
        await db.end();
        await svc.close();
      }
    });
  },
);
