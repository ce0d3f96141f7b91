/**
 * PostgreSQL goes away in the middle of a run and comes back: once stopped with
 * `pg_ctl stop -m immediate` (an abort, recovered from the WAL on start) and once crashed by
 * kill -9 of every server process. While it is down /health answers 503; once it is back /health
 * answers 200 and the workers resume by themselves. Every event of every request answered 200 is
 * stored once and the counters add up. On both PostgreSQL backends, with a private server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { faultBackends, suiteTitle } from '../helpers/fault-resources.js';
import { startFaultService, type FaultService } from '../helpers/fault-service.js';
import { healthBecomes, request, type Stats } from '../helpers/http.js';

interface Health {
  status: string;
  database: boolean;
  queue: boolean;
}

const EVENTS = 40_000;

/** Events queued and not yet applied, from Redis alone (it answers while PostgreSQL is down). */
async function queuedEvents(url: string): Promise<number> {
  const q = await request<{ queue_size: number }>(`${url}/queue/stats`);
  expect(q.status).toBe(200);
  return q.body.queue_size;
}

for (const backend of faultBackends((b) => b.startsWith('postgres'))) {
  describe.skipIf(backend.skip !== undefined)(suiteTitle('PostgreSQL restart', backend), () => {
    let run: FaultService | undefined;
    afterEach(async () => {
      await run?.dispose();
    });

    it('PostgreSQL stopped (immediate) and crashed (kill -9) mid-run: workers resume, nothing acknowledged lost', async () => {
      const started = Date.now();
      run = await startFaultService(backend.name, {
        events: EVENTS,
        topics: ['a', 'b', 'c'],
        seed: 13,
      });
      const postgres = run.resources.postgres;
      if (postgres === undefined) throw new Error('no private PostgreSQL');
      const { batches, url, workload: w } = run;
      const publisher = run.publish();
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
      // The workers resumed by themselves: the queue drains without any restart of the service.
      const { stats, state, report } = await run.settle(publisher);

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
