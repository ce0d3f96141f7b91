/**
 * kill -9 of Redis (its own redis-server, `appendonly yes`, `appendfsync always`) in the middle of
 * a run, twice, and a restart on the same port and data: every event of every request answered
 * 200 is stored once, the counters add up; while Redis is down /health says so (503) and
 * publishers are told to retry (503), and the service reports the queue's durability as
 * `aof-always` in /health and in its startup log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { faultBackends, suiteTitle } from '../helpers/fault-resources.js';
import { startFaultService, type FaultService } from '../helpers/fault-service.js';
import { healthBecomes, request } from '../helpers/http.js';

interface Health {
  status: string;
  database: boolean;
  queue: boolean;
  queue_backend: string;
  queue_durability: string;
}

const EVENTS = 40_000;

for (const backend of faultBackends((b) => b === 'postgres-redis')) {
  describe.skipIf(backend.skip !== undefined)(suiteTitle('Redis crash', backend), () => {
    let run: FaultService | undefined;
    afterEach(async () => {
      await run?.dispose();
    });

    it('kill -9 of Redis twice mid-run: no acknowledged event lost, counters exact', async () => {
      const started = Date.now();
      run = await startFaultService(backend.name, {
        events: EVENTS,
        topics: ['a', 'b'],
        seed: 11,
        appendfsync: 'always',
      });
      const redis = run.resources.redis;
      if (redis === undefined) throw new Error('no private Redis');
      const { batches, url, workload: w } = run;

      // Durability as the service sees it: in /health and in the startup log.
      const healthy = await request<Health>(`${url}/health`);
      expect(healthy.status).toBe(200);
      expect(healthy.body).toMatchObject({
        queue_backend: 'redis-streams',
        queue_durability: 'aof-always',
      });
      const startupLine = run.service
        .output()
        .split('\n')
        .find((line) => line.includes('"queue":"redis-streams"'));
      expect(startupLine).toBeDefined();
      expect(JSON.parse(startupLine ?? '{}')).toMatchObject({
        level: 30,
        durability: 'aof-always',
        msg: expect.stringContaining('appendfsync always') as unknown,
      });

      const publisher = run.publish();
      const outages: { acknowledged: number; health: Health; downMs: number }[] = [];
      for (const share of [0.25, 0.6]) {
        while (publisher.acknowledged() < batches * share) await sleep(5);
        await redis.kill9();
        const down = Date.now();
        const acknowledged = publisher.acknowledged();
        expect(acknowledged, 'Redis killed mid-run').toBeLessThan(batches);
        // While Redis is away the service says so, and publishing is refused with 503.
        const unhealthy = await healthBecomes<Health>(url, 503);
        expect(unhealthy.body).toMatchObject({ status: 'unhealthy', database: true, queue: false });
        // Long enough for workers to fail and back off, and for publishers to be turned away.
        await sleep(1000);
        await redis.start();
        outages.push({ acknowledged, health: unhealthy.body, downMs: Date.now() - down });
        await healthBecomes<Health>(url, 200);
      }
      const { stats, state, report } = await run.settle(publisher, async () => {
        const after = await request<Health>(`${url}/health`);
        expect(after.body.queue_durability).toBe('aof-always');
      });
      // Publishing really was refused during the outages (and retried).
      expect(report.statuses[503] ?? 0).toBeGreaterThan(0);

      console.log(
        `[redis-crash] ${outages.length} Redis kills at ${outages
          .map((o) => `${o.acknowledged} (down ${o.downMs} ms)`)
          .join(', ')} of ${batches} batches acknowledged; ` +
          `${EVENTS} events (${w.unique} unique) acknowledged in ${report.attempts} requests; ` +
          `statuses ${JSON.stringify(report.statuses)}, answers lost ${report.answersLost}; ` +
          `received ${stats.received}, unique ${stats.unique_processed}, duplicates ${stats.duplicate_dropped}; ` +
          `rows ${state.rows}; lost 0; ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }, 180_000);
  });
}
