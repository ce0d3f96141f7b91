/**
 * The HTTP contract of the replaced system, scenario by scenario under its names, plus the cases it
 * got wrong. Runs on every backend combination (BACKENDS picks), through the real server on a
 * real port, each test on fresh data.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { normalizeTimestamp } from '../../src/timestamp.js';
import {
  event,
  publish,
  publishAll,
  request,
  stats,
  waitForDrain,
  type Stats,
} from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

for (const backend of suiteBackends(undefined, { focused: true })) {
  describe.skipIf(backend.skip !== undefined)(
    `API on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      let base: string;
      let topic: string;

      beforeEach(async () => {
        svc = await startTestService(backend.name);
        base = svc.url;
        topic = `t-${randomUUID().slice(0, 8)}`;
      });
      afterEach(async () => {
        await svc?.close();
      });

      async function rows(t?: string, on: TestService = svc): Promise<number> {
        return on.service.store.countEvents(t);
      }

      function expectConsistent(s: Stats) {
        expect(s.received).toBe(s.unique_processed + s.duplicate_dropped);
      }

      it('publish_accepts_event', async () => {
        const reply = await publish(base, [event(topic, 1)]);
        expect(reply.status).toBe(200);
        expect(reply.body).toMatchObject({ accepted: 1, queued: 1 });
        const s = await waitForDrain(base, 1);
        expect(s.unique_processed).toBe(1);
        expect(await rows(topic)).toBe(1);
      });

      it('health_endpoint', async () => {
        const reply = await request<Record<string, unknown>>(`${base}/health`);
        expect(reply.status).toBe(200);
        expect(reply.body).toMatchObject({ status: 'healthy', database: true, queue: true });
        // The shared test Redis keeps nothing on disk, and says so.
        expect(reply.body.queue_durability).toMatch(
          backend.name.endsWith('redis')
            ? /^(aof-always|aof-everysec|aof-no|rdb-snapshots|none)$/
            : backend.name.endsWith('jetstream')
              ? /^jetstream-file-r\d+$/
              : new RegExp(`^${backend.name.split('-')[0]}-transaction$`),
        );
        expect(typeof reply.body.uptime_seconds).toBe('number');
      });

      it('readiness and liveness probes', async () => {
        // Readiness is the same check as /health; liveness checks no dependency.
        const health = await request<Record<string, unknown>>(`${base}/health`);
        const ready = await request<Record<string, unknown>>(`${base}/health/ready`);
        expect(ready.status).toBe(200);
        expect(Object.keys(ready.body).sort()).toEqual(Object.keys(health.body).sort());
        expect(ready.body).toMatchObject({ status: 'healthy', database: true, queue: true });
        const live = await request<Record<string, unknown>>(`${base}/health/live`);
        expect(live.status).toBe(200);
        expect(live.body).toMatchObject({ status: 'alive' });
        expect(typeof live.body.uptime_seconds).toBe('number');
        const openapi = await request<{ paths: Record<string, unknown> }>(`${base}/docs/json`);
        expect(Object.keys(openapi.body.paths)).toEqual(
          expect.arrayContaining(['/health', '/health/ready', '/health/live']),
        );
      });

      it('a Last-Event-ID that is not a position says what it must be', async () => {
        const reply = await request<{ code: string; message: string }>(`${base}/events/stream`, {
          headers: { 'last-event-id': 'abc' },
        });
        expect(reply.status).toBe(422);
        expect(reply.body.code).toBe('AGG_ERR_INVALID_QUERY');
        expect(reply.body.message).toContain('must match the pattern ^\\d{1,15}$');
        expect(reply.body.message).not.toContain('control characters');
      });

      it('queue_stats_endpoint', async () => {
        const reply = await request<Record<string, unknown>>(`${base}/queue/stats`);
        expect(reply.status).toBe(200);
        expect(reply.body).toEqual({
          queue_size: 0,
          queue_messages: 0,
          queue_type: backend.name.endsWith('redis')
            ? 'redis-streams'
            : backend.name.endsWith('jetstream')
              ? 'jetstream'
              : 'inbox',
          worker_count: 2,
          workers_enabled: true,
        });
      });

      it('queue_size counts events accepted but not yet applied', async () => {
        const api = await startTestService(
          backend.name,
          { WORKERS_ENABLED: 'false' },
          svc.resources,
        );
        try {
          await svc.stop();
          expect((await publish(api.url, [event(topic, 1), event(topic, 2)])).status).toBe(200);
          expect((await publish(api.url, [event(topic, 3)])).status).toBe(200);
          const q = await request<{ queue_size: number; queue_messages: number }>(
            `${api.url}/queue/stats`,
          );
          expect(q.body).toMatchObject({
            queue_size: 3,
            queue_messages: 2,
            workers_enabled: false,
          });
          expect((await stats(api.url)).received).toBe(0);
        } finally {
          await api.stop();
        }
      });

      it('backpressure: past QUEUE_MAX_EVENTS publish answers 503 with Retry-After, nothing lost', async () => {
        await svc.stop();
        const api = await startTestService(
          backend.name,
          { WORKERS_ENABLED: 'false', QUEUE_MAX_EVENTS: '10', RETRY_AFTER_SECONDS: '3' },
          svc.resources,
        );
        try {
          const six = (p: string) => Array.from({ length: 6 }, (_, i) => event(topic, `${p}${i}`));
          expect((await publish(api.url, six('a'))).status).toBe(200);
          // The inbox checks a depth at most 250 ms old; Redis checks it exactly.
          await new Promise((r) => setTimeout(r, 300));
          const refused = await publish(api.url, six('b'));
          expect(refused.status).toBe(503);
          expect(refused.headers.get('retry-after')).toBe('3');
          expect(refused.body).toMatchObject({ code: 'AGG_ERR_QUEUE_FULL' });
          // Atomic publishes bypass the queue, so they are still served.
          expect((await publish(api.url, [event(topic, 'atomic')], '?atomic=true')).status).toBe(
            200,
          );
        } finally {
          await api.stop();
        }
        const workers = await startTestService(backend.name, {}, svc.resources);
        try {
          const s = await waitForDrain(workers.url, 7);
          expect(s).toMatchObject({ received: 7, unique_processed: 7 });
          expect((await publish(workers.url, [event(topic, 'later')])).status).toBe(200);
        } finally {
          await workers.stop();
        }
      });

      it('deduplication_counts', async () => {
        const e = event(topic, 'same');
        for (let i = 0; i < 3; i++) expect((await publish(base, [e])).status).toBe(200);
        const s = await waitForDrain(base, 3);
        expect(s).toMatchObject({ received: 3, unique_processed: 1, duplicate_dropped: 2 });
        expect(await rows(topic)).toBe(1);
      });

      it('duplicate_rate_under_load', async () => {
        const w = makeWorkload({ total: 2000, dupRate: 0.4, topics: [topic], idPrefix: topic });
        await publishAll(base, w.events, { batch: 50, concurrency: 10 });
        const s = await waitForDrain(base, 2000);
        expect(s).toMatchObject({
          received: 2000,
          unique_processed: w.unique,
          duplicate_dropped: w.duplicates,
        });
        expect(s.dedup_rate_percent).toBe(40);
        expect(await rows()).toBe(w.unique);
      });

      it('cross_topic_dedup', async () => {
        const other = `${topic}-other`;
        await publish(base, [event(topic, 'x'), event(other, 'x')]);
        const s = await waitForDrain(base, 2);
        expect(s).toMatchObject({ received: 2, unique_processed: 2, duplicate_dropped: 0 });
        expect(await rows(topic)).toBe(1);
        expect(await rows(other)).toBe(1);
      });

      it('events_endpoint_filters_by_topic', async () => {
        const other = `${topic}-other`;
        await publish(base, [event(topic, 1), event(topic, 2), event(other, 1)]);
        await waitForDrain(base, 3);
        const reply = await request<{ topic: string; event_id: string; processed_at: string }[]>(
          `${base}/events?topic=${topic}`,
        );
        expect(reply.status).toBe(200);
        expect(reply.body).toHaveLength(2);
        expect(reply.body.every((e) => e.topic === topic)).toBe(true);
        expect(Number.isNaN(Date.parse(reply.body[0]?.processed_at ?? ''))).toBe(false);
        const all = await request<unknown[]>(`${base}/events`);
        expect(all.body).toHaveLength(3);
      });

      it('events are newest first and carry every field', async () => {
        await publish(base, [
          event(topic, 'old', {
            timestamp: '2024-01-01T00:00:00Z',
            payload: { a: [1, { b: null }] },
          }),
          event(topic, 'new', { timestamp: '2024-01-02T00:00:00+02:00' }),
          event(topic, 'local', { timestamp: '2024-01-01T12:00:00' }),
        ]);
        await waitForDrain(base, 3);
        const reply = await request<Record<string, unknown>[]>(`${base}/events?topic=${topic}`);
        expect(reply.body.map((e) => e.event_id)).toEqual(['new', 'local', 'old']);
        expect(reply.body[0]).toMatchObject({
          timestamp: '2024-01-01T22:00:00.000000Z',
          source: 'test',
        });
        // A timestamp without an offset is UTC.
        expect(reply.body[1]).toMatchObject({ timestamp: '2024-01-01T12:00:00.000000Z' });
        expect(reply.body[2]).toMatchObject({ payload: { a: [1, { b: null }] } });
      });

      it('every timestamp form the API accepts is stored as the instant it names', async () => {
        const forms = [
          '2024-05-01t12:00:00z',
          '2024-05-01 12:00',
          '2024-05-01T12:00:00',
          '2024-05-01T12:00:00.123456+05:30',
          '2024-05-01T12:00:00-0800',
          '2024-05-01T12:00:00+02',
          '0001-01-01T00:00:00Z',
          '9999-12-31T23:59:59+15:00',
        ];
        const reply = await publish(
          base,
          forms.map((timestamp, i) => event(topic, i, { timestamp })),
        );
        expect(reply.status).toBe(200);
        await waitForDrain(base, forms.length);
        const stored = await request<{ event_id: string; timestamp: string }[]>(
          `${base}/events?topic=${topic}`,
        );
        for (const [i, form] of forms.entries()) {
          const expected = Date.parse(normalizeTimestamp(form) ?? 'invalid');
          const got = stored.body.find((e) => e.event_id === String(i))?.timestamp ?? '';
          expect(got, form).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
          expect(Date.parse(got), form).toBe(expected);
        }
      });

      it('stats_topics_listed', async () => {
        const topics = [`${topic}-a`, `${topic}-b`, `${topic}-c`];
        await publish(
          base,
          topics.map((t) => event(t, 1)),
        );
        const s = await waitForDrain(base, 3);
        expect(s.topics).toEqual(topics);
      });

      it('get_events_limit', async () => {
        await publish(
          base,
          Array.from({ length: 25 }, (_, i) => event(topic, i)),
        );
        await waitForDrain(base, 25);
        const page = await request<unknown[]>(`${base}/events?topic=${topic}&limit=10`);
        expect(page.body).toHaveLength(10);
        const last = await request<unknown[]>(`${base}/events?topic=${topic}&limit=10&offset=20`);
        expect(last.body).toHaveLength(5);
        const byDefault = await request<unknown[]>(`${base}/events?topic=${topic}`);
        expect(byDefault.body).toHaveLength(25);
        for (const bad of ['limit=0', 'limit=1001', 'limit=abc', 'offset=-1']) {
          const reply = await request<{ code: string }>(`${base}/events?${bad}`);
          expect(reply.status, bad).toBe(422);
          expect(reply.body.code).toBe('AGG_ERR_INVALID_QUERY');
        }
      });

      it('invalid_request_rejected', async () => {
        const cases: [unknown, string][] = [
          [{}, 'events'],
          [{ events: [] }, 'events'],
          [{ events: 'nope' }, 'events'],
          [{ invalid: 'data' }, 'events'],
        ];
        for (const [body, field] of cases) {
          const reply = await request<{ code: string; details: { field: string }[] }>(
            `${base}/publish`,
            {
              method: 'POST',
              body,
            },
          );
          expect(reply.status, JSON.stringify(body)).toBe(422);
          expect(reply.body.code).toBe('AGG_ERR_VALIDATION');
          expect(reply.body.details.map((d) => d.field)).toContain(field);
        }
        const s = await stats(base);
        expect(s.received).toBe(0);
      });

      it('schema_validation_timestamp', async () => {
        for (const timestamp of [
          'not-a-date',
          '2024-13-01T00:00:00Z',
          '2023-02-29T00:00:00Z',
          '2024-01-01',
          '12:00:00',
          '',
        ]) {
          const reply = await publish(base, [event(topic, 1, { timestamp })]);
          expect(reply.status, timestamp).toBe(422);
          expect(JSON.stringify(reply.body)).toContain('events[0].timestamp');
        }
        const numeric = await publish(base, [{ ...event(topic, 1), timestamp: 1714564800 }]);
        expect(numeric.status).toBe(422);
      });

      it('schema_validation_missing_fields', async () => {
        for (const field of ['topic', 'event_id', 'timestamp', 'source']) {
          const e: Record<string, unknown> = { ...event(topic, 1) };
          delete e[field];
          const reply = await publish(base, [event(topic, 0), e]);
          expect(reply.status, field).toBe(422);
          const body = reply.body as unknown as { details: { field: string; reason: string }[] };
          expect(body.details).toContainEqual({
            field: `events[1].${field}`,
            reason: 'is required',
          });
        }
        // Nothing of a refused batch is queued: its valid event 0 must not appear.
        await new Promise((r) => setTimeout(r, 200));
        expect((await stats(base)).received).toBe(0);
        expect(await rows()).toBe(0);
      });

      it('schema_validation_empty_topic', async () => {
        for (const t of ['', '   ', 'x'.repeat(256)]) {
          const reply = await publish(base, [event(t, 1)]);
          expect(reply.status, JSON.stringify(t)).toBe(422);
          expect(JSON.stringify(reply.body)).toContain('events[0].topic');
        }
        const ok = await publish(base, [event('x'.repeat(255), 1)]);
        expect(ok.status).toBe(200);
      });

      it('payload must be an object; a missing payload is {}', async () => {
        for (const payload of [[1, 2], 'text', 5, null]) {
          const reply = await publish(base, [{ ...event(topic, 1), payload }]);
          expect(reply.status, JSON.stringify(payload)).toBe(422);
        }
        const e: Record<string, unknown> = { ...event(topic, 'bare') };
        delete e.payload;
        expect((await publish(base, [e])).status).toBe(200);
        await waitForDrain(base, 1);
        const stored = await request<{ payload: unknown }[]>(`${base}/events?topic=${topic}`);
        expect(stored.body[0]?.payload).toEqual({});
      });

      it('batch_handling_multiple_events', async () => {
        const events = Array.from({ length: 100 }, (_, i) => event(topic, i));
        const reply = await publish(base, events);
        expect(reply.body).toMatchObject({ accepted: 100, queued: 100 });
        const s = await waitForDrain(base, 100);
        expect(s).toMatchObject({ received: 100, unique_processed: 100, duplicate_dropped: 0 });
        expect(await rows(topic)).toBe(100);
      });

      it('limits: too many events and too large a body answer 413', async () => {
        const tooMany = await publish(
          base,
          Array.from({ length: 1001 }, (_, i) => event(topic, i)),
        );
        expect(tooMany.status).toBe(413);
        expect(tooMany.body).toMatchObject({ code: 'AGG_ERR_TOO_MANY_EVENTS' });
        const huge = await publish(base, [
          event(topic, 1, { payload: { blob: 'x'.repeat(6 * 1024 * 1024) } }),
        ]);
        expect(huge.status).toBe(413);
        expect(huge.body).toMatchObject({ code: 'AGG_ERR_BODY_TOO_LARGE' });
        expect((await publish(base, [event(topic, 'after')])).status).toBe(200);
        const s = await waitForDrain(base, 1);
        expect(s.received).toBe(1);
      });

      it('atomic_batch_processing', async () => {
        await publish(base, [event(topic, 'seen')], '?atomic=true');
        const reply = await publish(
          base,
          [event(topic, 'a'), event(topic, 'seen'), event(topic, 'b'), event(topic, 'a')],
          '?atomic=true',
        );
        expect(reply.status).toBe(200);
        expect(reply.body).toEqual({
          accepted: 4,
          queued: 0,
          processed: 2,
          duplicates: 2,
          conflicts: 0,
        });
        // Stored before the answer: no waiting for a worker.
        expect(await rows(topic)).toBe(3);
        const listed = await request<{ event_id: string }[]>(`${base}/events?topic=${topic}`);
        expect(listed.body.map((e) => e.event_id).sort()).toEqual(['a', 'b', 'seen']);
        const s = await stats(base);
        expect(s).toMatchObject({ received: 5, unique_processed: 3, duplicate_dropped: 2 });
      });

      it('concurrent_workers_no_double_process', async () => {
        await svc.stop();
        const many = await startTestService(
          backend.name,
          { WORKER_CONCURRENCY: '4', WORKER_BATCH_MESSAGES: '3' },
          svc.resources,
        );
        // On PostgreSQL a second process joins with its own workers on the same data.
        const extra = backend.name.startsWith('postgres')
          ? await startTestService(
              backend.name,
              { ROLE: 'worker', WORKER_CONCURRENCY: '3' },
              svc.resources,
            )
          : undefined;
        try {
          const w = makeWorkload({
            total: 3000,
            dupRate: 0.3,
            topics: [topic, `${topic}-2`],
            idPrefix: topic,
          });
          await publishAll(many.url, w.events, { batch: 20, concurrency: 8 });
          const s = await waitForDrain(many.url, 3000);
          expect(s).toMatchObject({
            received: 3000,
            unique_processed: w.unique,
            duplicate_dropped: w.duplicates,
          });
          expect(await rows(undefined, many)).toBe(w.unique);
        } finally {
          await extra?.stop();
          await many.stop();
        }
      });

      it('concurrent_publish_requests', async () => {
        const replies = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            publish(base, [event(topic, i), event(topic, i + 1000)]),
          ),
        );
        expect(replies.every((r) => r.status === 200)).toBe(true);
        const s = await waitForDrain(base, 60);
        expect(s).toMatchObject({ received: 60, unique_processed: 60 });
      });

      it('50 concurrent requests with overlapping keys: no deadlock surfaces, counts exact', async () => {
        // Every request carries the same 40 keys in a different order, plus 10 of its own.
        const shared = Array.from({ length: 40 }, (_, i) => event(topic, `shared-${i}`));
        const bodies = Array.from({ length: 50 }, (_, r) => {
          const mine = Array.from({ length: 10 }, (_, i) => event(topic, `own-${r}-${i}`));
          const order = [...shared, ...mine].sort(() => (((r * 7919) % 13) - 6) / 13);
          return r % 2 === 0 ? order : order.reverse();
        });
        const replies = await Promise.all(
          bodies.map((b, i) => publish(base, b, i % 5 === 0 ? '?atomic=true' : '')),
        );
        expect(replies.map((r) => r.status)).toEqual(Array(50).fill(200));
        const s = await waitForDrain(base, 2500);
        expect(s).toMatchObject({
          received: 2500,
          unique_processed: 40 + 500,
          duplicate_dropped: 2500 - 540,
        });
        expect(await rows(topic)).toBe(540);
      });

      it('stats_counter_consistency', async () => {
        const w = makeWorkload({
          total: 1500,
          dupRate: 0.25,
          topics: [topic, `${topic}-b`],
          idPrefix: topic,
        });
        await publishAll(base, w.events.slice(0, 1000), { batch: 100, concurrency: 4 });
        await publishAll(base, w.events.slice(1000), {
          batch: 100,
          concurrency: 4,
          atomic: true,
        });
        const s = await waitForDrain(base, 1500);
        expectConsistent(s);
        expect(s.unique_processed).toBe(w.unique);
        expect(s.unique_processed).toBe(await rows());
      });

      it('stress_batch_events: 20,000 events with 35% duplicates end exact', async () => {
        const w = makeWorkload({
          total: 20_000,
          dupRate: 0.35,
          topics: [topic, `${topic}-b`, `${topic}-c`],
          idPrefix: topic,
        });
        await publishAll(base, w.events, { batch: 100, concurrency: 20 });
        const s = await waitForDrain(base, 20_000, 120_000);
        expect(s).toEqual({
          ...s,
          received: 20_000,
          unique_processed: 13_000,
          duplicate_dropped: 7_000,
        });
        expect(w.unique).toBe(13_000);
        expect(await rows()).toBe(13_000);
      });
    },
  );
}
