/**
 * Retention: events older than RETENTION_DAYS by event time (or their topic's
 * RETENTION_TOPIC_DAYS) are deleted in the background in small transactions and counted as
 * expired; the other counters do not move, and everything younger stays.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { event, publishAll, request, stats, waitForDrain } from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

const DAY = 24 * 3600_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `retention on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService | undefined;
      afterEach(async () => {
        await svc?.close();
      });

      it('deletes what is older than its topic keeps, counts it, keeps the rest', async () => {
        const run = randomUUID().slice(0, 6);
        const [general, keep, short] = [`general-${run}`, `keep-${run}`, `short-${run}`];
        svc = await startTestService(backend.name, {
          RETENTION_DAYS: '30',
          RETENTION_TOPIC_DAYS: `${keep}=0,${short}=1`,
          RETENTION_INTERVAL_MS: '200',
        });
        const events = [
          // More than one deletion batch of old events in the general topic.
          ...Array.from({ length: 2500 }, (_, i) =>
            event(general, `old-${i}`, { timestamp: ago(31 * DAY + i * 1000) }),
          ),
          event(general, 'fresh', { timestamp: ago(29 * DAY) }),
          event(keep, 'ancient', { timestamp: '2001-01-01T00:00:00Z' }),
          event(short, 'two-days', { timestamp: ago(2 * DAY) }),
          event(short, 'an-hour', { timestamp: ago(3600_000) }),
        ];
        await publishAll(svc.url, events, { batch: 500, concurrency: 2 });
        const before = await waitForDrain(svc.url, events.length);
        expect(before.unique_processed).toBe(events.length);

        await expect
          .poll(async () => (await stats(svc?.url ?? '')).expired, { timeout: 20_000 })
          .toBe(2501);
        const after = await stats(svc.url);
        // The arrival counters are history: retention does not rewrite them.
        expect(after).toMatchObject({
          received: before.received,
          unique_processed: before.unique_processed,
          duplicate_dropped: before.duplicate_dropped,
        });
        const ids = async (topic: string) =>
          (
            await request<{ event_id: string }[]>(`${svc?.url}/events?topic=${topic}&limit=1000`)
          ).body
            .map((e) => e.event_id)
            .sort();
        expect(await ids(general)).toEqual(['fresh']);
        expect(await ids(keep)).toEqual(['ancient']);
        expect(await ids(short)).toEqual(['an-hour']);
        expect(await svc.service.store.countEvents()).toBe(3);
        const metrics = await (await fetch(`${svc.url}/metrics`)).text();
        expect(metrics).toMatch(/^aggregator_events_expired_total 2501$/m);
      });
    },
  );
}
