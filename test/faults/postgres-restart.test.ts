/**
 * PostgreSQL goes away in the middle of a run and comes back: once stopped with
 * `pg_ctl stop -m immediate` (an abort, recovered from the WAL on start) and once crashed by
 * kill -9 of every server process. While it is down /health answers 503; once it is back /health
 * answers 200 and the workers resume by themselves. Every event of every request answered 200 is
 * stored once and the counters add up. On both PostgreSQL backends, with a private server.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import {
  createFaultResources,
  faultBackends,
  suiteTitle,
  type FaultResources,
} from '../helpers/fault-resources.js';
import { healthBecomes, request, type Stats } from '../helpers/http.js';
import { expectSettledExactlyOnce } from '../helpers/invariants.js';
import { spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { startPublishing } from '../helpers/retrying-publisher.js';

interface Health {
  status: string;
  database: boolean;
  queue: boolean;
}

const EVENTS = 40_000;
const BATCH = 100;

/** Events queued and not yet applied, from Redis alone (it answers while PostgreSQL is down). */
async function queuedEvents(url: string): Promise<number> {
  const q = await request<{ queue_size: number }>(`${url}/queue/stats`);
  expect(q.status).toBe(200);
  return q.body.queue_size;
}

for (const backend of faultBackends((b) => b.startsWith('postgres'))) {
  describe.skipIf(backend.skip !== undefined)(suiteTitle('PostgreSQL restart', backend), () => {
    let resources: FaultResources | undefined;
    let service: ServiceProcess | undefined;
    afterEach(async () => {
      await service?.stopGroup('SIGKILL');
      await resources?.dispose();
    });

    it('PostgreSQL stopped (immediate) and crashed (kill -9) mid-run: workers resume, nothing acknowledged lost', async () => {
      const started = Date.now();
      resources = await createFaultResources(backend.name);
      const postgres = resources.postgres;
      if (postgres === undefined) throw new Error('no private PostgreSQL');
      const env: Record<string, string> = { ...resources.env, CLAIM_IDLE_MS: '2000' };
      delete env.WORKER_PROCESSES;
      service = await spawnService(env, { ownProcessGroup: true });
      const url = service.url;

      const id = randomUUID().slice(0, 8);
      const w = makeWorkload({
        total: EVENTS,
        dupRate: 0.35,
        topics: [`a-${id}`, `b-${id}`, `c-${id}`],
        idPrefix: id,
        seed: 13,
      });
      const batches = Math.ceil(EVENTS / BATCH);
      const publisher = startPublishing(url, w.events, { batch: BATCH, concurrency: 8 });
      // How far the run is. With the inbox, publishing itself needs PostgreSQL, so the run is
      // the publishing; with Redis, publishing goes on without PostgreSQL and the run is the
      // applying of what was queued.
      const viaRedis = backend.name === 'postgres-redis';
      const progress = async () => {
        if (!viaRedis) return publisher.acknowledged() / batches;
        const reply = await request<Stats>(`${url}/stats`);
        return reply.status === 200 ? reply.body.received / EVENTS : 0;
      };
      const outages: { how: string; acknowledged: number; queued: number; downMs: number }[] = [];
      for (const [share, how] of [
        [0.25, 'pg_ctl stop -m immediate'],
        [0.6, 'kill -9'],
      ] as const) {
        while ((await progress()) < share) await sleep(10);
        if (how === 'kill -9') await postgres.kill9();
        else await postgres.stop('immediate');
        const down = Date.now();
        // Mid-run: requests still to publish, or (Redis) events queued and not yet applied.
        const acknowledged = publisher.acknowledged();
        const queued = viaRedis ? await queuedEvents(url) : 0;
        expect(acknowledged < batches || queued > 0, 'PostgreSQL stopped mid-run').toBe(true);
        const unhealthy = await healthBecomes<Health>(url, 503);
        expect(unhealthy.body).toMatchObject({ status: 'unhealthy', database: false });
        // Long enough for the workers to fail and back off.
        await sleep(1500);
        await postgres.start();
        await healthBecomes<Health>(url, 200);
        outages.push({ how, acknowledged, queued, downMs: Date.now() - down });
      }
      const report = await publisher.done;

      // The workers resumed by themselves: the queue drains without any restart of the service.
      const running = service;
      const { stats, state } = await expectSettledExactlyOnce({
        url,
        events: EVENTS,
        unique: w.unique,
        published: w.events,
        acknowledged: publisher.acknowledgedEvents(),
        uncertainEvents: report.uncertainEvents,
        stop: () => running.stopGroup('SIGTERM'),
        resources,
      });

      console.log(
        `[postgres-restart ${backend.name}] outages: ${outages
          .map(
            (o) =>
              `${o.how} with ${o.acknowledged}/${batches} batches acknowledged and ${o.queued} events queued, down ${o.downMs} ms`,
          )
          .join(
            '; ',
          )}; ${EVENTS} events (${w.unique} unique) acknowledged in ${report.attempts} requests; ` +
          `statuses ${JSON.stringify(report.statuses)}, answers lost ${report.answersLost}; ` +
          `received ${stats.received}, unique ${stats.unique_processed}, duplicates ${stats.duplicate_dropped}; ` +
          `rows ${state.rows}; lost 0; ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }, 180_000);
  });
}
