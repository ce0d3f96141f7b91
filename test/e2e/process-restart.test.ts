/**
 * The built service as a real process (`node dist/main.js`, what `npm start` runs): a clean
 * restart keeps events, counters and dedup memory; SIGTERM exits 0; kill -9 in the middle of a
 * run loses nothing that was acknowledged. On every backend.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { publish, publishAll, request, stats, waitForDrain } from '../helpers/http.js';
import { freePort, spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `service process on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let resources: TestResources;
      const running: ServiceProcess[] = [];
      afterEach(async () => {
        for (const p of running.splice(0)) await p.stop('SIGKILL');
        await resources?.dispose();
      });

      async function start(port?: number): Promise<ServiceProcess> {
        const p = await spawnService(
          { ...resources.env, LOG_LEVEL: 'info', CLAIM_IDLE_MS: '1000' },
          { port },
        );
        running.push(p);
        return p;
      }

      it('persistence_across_restart: events, counters and dedup memory survive a real restart', async () => {
        resources = await createResources(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const w = makeWorkload({ total: 1000, dupRate: 0.3, topics: [topic], idPrefix: topic });
        const first = await start();
        await publishAll(first.url, w.events, { batch: 100, concurrency: 4 });
        const before = await waitForDrain(first.url, 1000);
        expect(await first.stop('SIGTERM')).toBe(0);
        expect(first.output()).toContain('"clean":true');

        const second = await start();
        const after = await stats(second.url);
        expect(after).toMatchObject({
          received: before.received,
          unique_processed: w.unique,
          duplicate_dropped: w.duplicates,
          topics: [topic],
        });
        const listed = await request<unknown[]>(`${second.url}/events?topic=${topic}&limit=1000`);
        expect(listed.body).toHaveLength(w.unique);
        // Dedup memory: the same events again are all duplicates.
        await publishAll(second.url, w.events, { batch: 100, concurrency: 4 });
        const again = await waitForDrain(second.url, 2000);
        expect(again).toMatchObject({
          received: 2000,
          unique_processed: w.unique,
          duplicate_dropped: 2000 - w.unique,
        });
      });

      it('kill -9 mid-run: nothing acknowledged is lost, nothing is doubled', async () => {
        resources = await createResources(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        // Large enough that the publisher is still sending when the second kill lands, however
        // fast the machine answers.
        const w = makeWorkload({
          total: 20_000,
          dupRate: 0.35,
          topics: [topic, `${topic}-b`],
          idPrefix: topic,
        });
        const port = await freePort();
        let current = await start(port);
        // The publisher retries on network errors and 503 while the service is down.
        const progress = { done: 0 };
        const batches = Math.ceil(w.events.length / 50);
        const publishing = publishAll(current.url, w.events, {
          batch: 50,
          concurrency: 8,
          progress,
        });
        for (const share of [0.2, 0.5]) {
          while (progress.done < batches * share) await sleep(5);
          expect(await current.stop('SIGKILL')).toBe('SIGKILL');
          // Killed mid-run: part of the workload is still to be sent.
          expect(progress.done).toBeLessThan(batches);
          current = await start(port);
        }
        await publishing;
        const s = await waitForDrain(current.url, w.events.length, 90_000);
        // A request whose answer was lost in the kill is sent again; its events then count as
        // duplicates, so `received` may exceed what was sent, but never the unique count.
        expect(s.unique_processed).toBe(w.unique);
        expect(s.received).toBe(s.unique_processed + s.duplicate_dropped);
        expect(s.received).toBeGreaterThanOrEqual(w.events.length);
        const rows = await request<unknown[]>(`${current.url}/events?topic=${topic}&limit=1000`);
        expect(rows.status).toBe(200);
        const last = await publish(current.url, [w.events[0]!]);
        expect(last.status).toBe(200);
      });
    },
  );
}
