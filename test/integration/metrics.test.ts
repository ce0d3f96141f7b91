/**
 * GET /metrics: the event counters equal /stats (the same rows), the queue gauge equals
 * /queue/stats, the histograms count what happened, and the batches applied by forked worker
 * processes reach the API process's metrics.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { publishAll, request, waitForDrain } from '../helpers/http.js';
import { spawnService, type ServiceProcess } from '../helpers/process-service.js';
import {
  createResources,
  startTestService,
  suiteBackends,
  type TestResources,
  type TestService,
} from '../helpers/test-service.js';

/** Sample values by series name with labels, e.g. `aggregator_queue_depth`. */
async function scrape(base: string): Promise<Map<string, number>> {
  const reply = await fetch(`${base}/metrics`);
  expect(reply.status).toBe(200);
  expect(reply.headers.get('content-type')).toContain('text/plain');
  const samples = new Map<string, number>();
  for (const line of (await reply.text()).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `metrics on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService | undefined;
      afterEach(async () => {
        await svc?.close();
      });

      it('counters equal /stats, the queue gauge equals /queue/stats, histograms count', async () => {
        svc = await startTestService(backend.name);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const w = makeWorkload({ total: 2000, dupRate: 0.35, topics: [topic], idPrefix: topic });
        await publishAll(svc.url, w.events, { batch: 100, concurrency: 4 });
        const stats = await waitForDrain(svc.url, 2000);
        await request(`${svc.url}/events?topic=${topic}&limit=5`);
        const m = await scrape(svc.url);
        expect(m.get('aggregator_events_received_total')).toBe(stats.received);
        expect(m.get('aggregator_events_unique_total')).toBe(stats.unique_processed);
        expect(m.get('aggregator_events_duplicate_total')).toBe(stats.duplicate_dropped);
        expect(stats).toMatchObject({
          unique_processed: w.unique,
          duplicate_dropped: w.duplicates,
        });
        expect(m.get('aggregator_queue_depth')).toBe(0);
        expect(m.get('aggregator_dead_letters')).toBe(0);
        expect(m.get('aggregator_events_accepted_total')).toBe(2000);
        expect(m.get('aggregator_batches_applied_total')).toBeGreaterThan(0);
        expect(m.get('aggregator_batch_apply_duration_seconds_count')).toBe(
          m.get('aggregator_batches_applied_total'),
        );
        // Routes are labelled by pattern, never by the raw URL with its query.
        expect(
          m.get(
            'aggregator_http_request_duration_seconds_count{method="POST",route="/publish",status_code="200"}',
          ),
        ).toBe(20);
        expect(
          m.get(
            'aggregator_http_request_duration_seconds_count{method="GET",route="/events",status_code="200"}',
          ),
        ).toBe(1);
        expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
        expect(m.get('aggregator_backend_up{backend="store"}')).toBe(1);
      });
    },
  );
}

const postgres = suiteBackends((b) => b === 'postgres-redis')[0];
describe.skipIf(postgres === undefined || postgres.skip !== undefined)(
  `metrics with a forked worker process${postgres?.skip ? ` (SKIPPED: ${postgres.skip})` : ''}`,
  () => {
    let resources: TestResources | undefined;
    let service: ServiceProcess | undefined;
    afterEach(async () => {
      await service?.stop('SIGTERM');
      await resources?.dispose();
    });

    it('batches applied in the worker process are counted in the API process metrics', async () => {
      resources = await createResources('postgres-redis');
      service = await spawnService({ ...resources.env, WORKER_PROCESSES: '1' });
      const topic = `t-${randomUUID().slice(0, 8)}`;
      const w = makeWorkload({ total: 1000, dupRate: 0.3, topics: [topic], idPrefix: topic });
      await publishAll(service.url, w.events, { batch: 100, concurrency: 2 });
      await waitForDrain(service.url, 1000);
      const m = await scrape(service.url);
      // The API process runs no worker loop itself: every applied batch was the child's.
      expect(m.get('aggregator_batches_applied_total')).toBeGreaterThan(0);
      expect(m.get('aggregator_batch_apply_duration_seconds_count')).toBe(
        m.get('aggregator_batches_applied_total'),
      );
      expect(m.get('aggregator_events_unique_total')).toBe(w.unique);
    });
  },
);
