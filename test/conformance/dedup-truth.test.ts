/**
 * Deduplication that tells the truth, on every backend: per-event outcomes of an atomic publish,
 * receipts of queued ones, duplicates that differ from the stored copy caught as conflicts (and
 * refused under DUPLICATE_POLICY=reject-conflicts), per-source statistics with delays, counters
 * that /stats/verify recomputes from the tables, and keys remembered after their payloads expired.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Retention } from '../../src/worker/retention.js';
import { event, publish, request, stats, waitForDrain } from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

interface Outcome {
  index: number;
  outcome: string;
  conflict: boolean;
  original_processed_at?: string;
}

interface ConflictSide {
  hash: string;
  timestamp: string | null;
  source: string | null;
  payload_start: string | null;
}

interface Conflict {
  topic: string;
  event_id: string;
  rejected: boolean;
  differs: string[];
  stored: ConflictSide;
  duplicate: ConflictSide;
}

interface Verify {
  consistent: boolean;
  checks: { name: string; difference: number }[];
}

for (const backend of suiteBackends(undefined, { focused: true })) {
  describe.skipIf(backend.skip !== undefined)(
    `dedup truth on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService | undefined;
      afterEach(async () => {
        await svc?.close();
        svc = undefined;
      });

      async function verify(base: string): Promise<Verify> {
        const reply = await request<Verify>(`${base}/stats/verify`);
        expect(reply.status).toBe(200);
        return reply.body;
      }

      it('duplicates that differ are conflicts, kept with both sides; equal ones are not', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const original = event(topic, 1, {
          timestamp: '2024-05-01T12:00:00Z',
          payload: { a: 1, b: 'x' },
        });
        await publish(svc.url, [original]);
        await waitForDrain(svc.url, 1);
        await publish(svc.url, [
          // The same event, written differently: same instant, same JSON object.
          { ...original, timestamp: '2024-05-01T14:00:00+02:00', payload: { b: 'x', a: 1 } },
          // Different payload, different source, different instant: conflicts.
          { ...original, payload: { a: 2, b: 'x' } },
          { ...original, source: 'elsewhere' },
          { ...original, timestamp: '2024-05-01T12:00:01Z' },
        ]);
        const s = await waitForDrain(svc.url, 5);
        expect(s).toMatchObject({
          received: 5,
          unique_processed: 1,
          duplicate_dropped: 4,
          conflicting_duplicates: 3,
          rejected: 0,
        });
        const conflicts = await request<Conflict[]>(`${svc.url}/conflicts?topic=${topic}`);
        expect(conflicts.body).toHaveLength(3);
        const [newest] = conflicts.body;
        expect(newest).toMatchObject({
          topic,
          event_id: '1',
          rejected: false,
          stored: { source: 'test', payload_start: '{"a": 1, "b": "x"}' },
          duplicate: { timestamp: '2024-05-01T12:00:01.000000Z' },
        });
        expect(newest?.stored.hash).not.toBe(newest?.duplicate.hash);
        // Newest first: the timestamp, the source, then the payload differed.
        expect(conflicts.body.map((c) => c.differs)).toEqual([
          ['timestamp'],
          ['source'],
          ['payload'],
        ]);
        const metrics = await (await fetch(`${svc.url}/metrics`)).text();
        expect(metrics).toMatch(/^aggregator_events_conflicting_duplicate_total 3$/m);
        expect(await verify(svc.url)).toMatchObject({ consistent: true });
      });

      it('atomic publish with detail=true says what became of each event', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const first = await publish(svc.url, [event(topic, 'old')], '?atomic=true');
        expect(first.status).toBe(200);
        const reply = await publish(
          svc.url,
          [
            event(topic, 'new'),
            event(topic, 'old'),
            event(topic, 'new'),
            event(topic, 'old', { payload: { changed: true } }),
          ],
          '?atomic=true&detail=true',
        );
        expect(reply.status).toBe(200);
        const body = reply.body as unknown as {
          processed: number;
          duplicates: number;
          conflicts: number;
          events: Outcome[];
        };
        expect(body.events.map((e) => [e.index, e.outcome, e.conflict])).toEqual([
          [0, 'stored', false],
          [1, 'duplicate', false],
          [2, 'duplicate', false],
          [3, 'duplicate', true],
        ]);
        // The summary counts equal the list.
        expect(body).toMatchObject({ processed: 1, duplicates: 3, conflicts: 1 });
        const stored = await request<{ event_id: string; processed_at: string }[]>(
          `${svc.url}/events?topic=${topic}`,
        );
        const oldAt = stored.body.find((e) => e.event_id === 'old')?.processed_at;
        const newAt = stored.body.find((e) => e.event_id === 'new')?.processed_at;
        expect(body.events[0]?.original_processed_at).toBeUndefined();
        expect(body.events[1]?.original_processed_at).toBe(oldAt);
        expect(body.events[2]?.original_processed_at).toBe(newAt);
        expect(await verify(svc.url)).toMatchObject({ consistent: true });
      });

      it('a queued publish has a receipt: pending, then each event outcome', async () => {
        svc = await startTestService(backend.name, { WORKERS_ENABLED: 'false' });
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const reply = await publish(svc.url, [
          event(topic, 1),
          event(topic, 2),
          event(topic, 1),
          event(topic, 2, { source: 'other' }),
        ]);
        const id = (reply.body as unknown as { message_id: string }).message_id;
        const pending = await request(`${svc.url}/publish/receipts/${id}`);
        expect(pending.body).toEqual({ message_id: id, status: 'pending' });
        const resources = svc.resources;
        await svc.stop();
        svc = await startTestService(backend.name, {}, resources);
        await waitForDrain(svc.url, 4);
        const receipt = await request<Record<string, unknown>>(`${svc.url}/publish/receipts/${id}`);
        expect(receipt.body).toEqual({
          message_id: id,
          status: 'applied',
          stored: 2,
          duplicates: 2,
          conflicts: 1,
          rejected: 0,
          events: [
            { index: 0, outcome: 'stored', conflict: false },
            { index: 1, outcome: 'stored', conflict: false },
            { index: 2, outcome: 'duplicate', conflict: false },
            { index: 3, outcome: 'duplicate', conflict: true },
          ],
        });
        const unknown = await request<{ code: string }>(`${svc.url}/publish/receipts/999999-0`);
        expect(unknown.status).toBe(404);
        expect(unknown.body.code).toBe('AGG_ERR_NOT_FOUND');
      });

      it('DUPLICATE_POLICY=reject-conflicts refuses them: 409 in atomic mode, rejected when queued', async () => {
        svc = await startTestService(backend.name, { DUPLICATE_POLICY: 'reject-conflicts' });
        const topic = `t-${randomUUID().slice(0, 8)}`;
        await publish(svc.url, [event(topic, 1)], '?atomic=true');
        const refused = await publish(
          svc.url,
          [event(topic, 2), event(topic, 1, { payload: { other: true } })],
          '?atomic=true',
        );
        expect(refused.status).toBe(409);
        expect(refused.body).toMatchObject({ code: 'AGG_ERR_CONFLICT' });
        expect(JSON.stringify(refused.body)).toContain('events[1]');
        // All or nothing: the new event of the refused batch is not stored either.
        expect(await svc.service.store.countEvents(topic)).toBe(1);
        expect((await stats(svc.url)).received).toBe(1);

        await publish(svc.url, [event(topic, 3), event(topic, 1, { source: 'changed' })]);
        const s = await waitForDrain(svc.url, 3);
        expect(s).toMatchObject({
          received: 3,
          unique_processed: 2,
          duplicate_dropped: 0,
          conflicting_duplicates: 1,
          rejected: 1,
        });
        const [conflict] = (
          await request<{ rejected: boolean }[]>(`${svc.url}/conflicts?topic=${topic}`)
        ).body;
        expect(conflict?.rejected).toBe(true);
        expect(await verify(svc.url)).toMatchObject({ consistent: true });
      });

      it('per-source statistics with the delay between an event and its copies', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        await publish(svc.url, [
          event(topic, 1, { source: 'a' }),
          event(topic, 2, { source: 'a' }),
        ]);
        await waitForDrain(svc.url, 2);
        await sleep(400);
        await publish(svc.url, [
          event(topic, 1, { source: 'b' }),
          event(topic, 2, { source: 'a' }),
          event(topic, 3, { source: 'b' }),
        ]);
        await waitForDrain(svc.url, 5);
        const reply = await request<{ sources: Record<string, number | null | string>[] }>(
          `${svc.url}/topics/${topic}/dedup`,
        );
        const [a, b] = reply.body.sources;
        expect(a).toMatchObject({ source: 'a', events: 3, unique: 2, duplicates: 1, conflicts: 0 });
        expect(b).toMatchObject({ source: 'b', events: 2, unique: 1, duplicates: 1, conflicts: 1 });
        expect(a?.duplicate_ratio).toBeCloseTo(1 / 3, 3);
        for (const s of [a, b]) {
          expect(Number(s?.max_delay_ms)).toBeGreaterThanOrEqual(390);
          // Each source has one copy, so its true median delay is its max delay; the median is
          // read from a histogram, within 19% of the truth however slow the machine is.
          const max = Number(s?.max_delay_ms);
          expect(Math.abs(Number(s?.median_delay_ms) - max)).toBeLessThanOrEqual(0.19 * max);
        }
      });

      it('keys outlive payloads: a very late copy is still a duplicate until KEY_RETENTION_DAYS', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const timestamp = '2024-01-01T00:00:00Z';
        await publish(svc.url, [event(topic, 'k', { timestamp }), event(topic, 'live')]);
        await waitForDrain(svc.url, 2);
        const day = 24 * 3600_000;
        let now = Date.parse(timestamp) + 31 * day;
        const config = loadConfig({ RETENTION_DAYS: '30', KEY_RETENTION_DAYS: '60' });
        const retention = new Retention(
          svc.service.store,
          config,
          pino({ level: 'silent' }),
          () => now,
        );

        // 31 days on (by the controlled clock): the payload goes, the key stays.
        expect(await retention.run()).toEqual({ payloads: 1, partitions: 0, keys: 0 });
        const listed = await request<{ event_id: string }[]>(`${svc.url}/events?topic=${topic}`);
        expect(listed.body.map((e) => e.event_id)).toEqual(['live']);
        await publish(svc.url, [event(topic, 'k', { timestamp })]);
        let s = await waitForDrain(svc.url, 3);
        expect(s).toMatchObject({
          unique_processed: 2,
          duplicate_dropped: 1,
          expired: 1,
          keys_expired: 0,
        });

        // 61 days on: the key is forgotten; a copy now is stored as new.
        now = Date.parse(timestamp) + 61 * day;
        expect(await retention.run()).toEqual({ payloads: 0, partitions: 0, keys: 1 });
        await publish(svc.url, [event(topic, 'k', { timestamp })]);
        s = await waitForDrain(svc.url, 4);
        expect(s).toMatchObject({
          unique_processed: 3,
          duplicate_dropped: 1,
          expired: 1,
          keys_expired: 1,
        });
        expect(await svc.service.store.countEvents(topic)).toBe(2);
        expect(await verify(svc.url)).toMatchObject({ consistent: true });
      });
    },
  );
}
