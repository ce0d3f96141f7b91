/**
 * The JetStream queue under faults, with a nats-server of the test's own (`-js`, store in a
 * temporary directory): kill -9 of the whole service (API process and forked worker) and kill -9
 * of nats-server with a restart on the same port and store, in the middle of a run. Every event
 * of every request answered 200 is stored once and the counters add up; while NATS is down
 * /health says so and publishers are told to retry (503).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { faultBackends, suiteTitle } from '../helpers/fault-resources.js';
import { startFaultService, type FaultService } from '../helpers/fault-service.js';
import { healthBecomes, request } from '../helpers/http.js';
import { processGroupGone } from '../helpers/process-group.js';

interface Health {
  status: string;
  queue: boolean;
  queue_backend: string;
}

const EVENTS = 30_000;

for (const backend of faultBackends((b) => b === 'postgres-jetstream', { focused: true })) {
  describe.skipIf(backend.skip !== undefined)(
    suiteTitle('NATS and service crashes', backend),
    () => {
      let run: FaultService | undefined;
      afterEach(async () => {
        await run?.dispose();
      });

      it('kill -9 of the service and of nats-server mid-run: nothing acknowledged lost, counts exact', async () => {
        const started = Date.now();
        run = await startFaultService(backend.name, {
          events: EVENTS,
          topics: ['a', 'b'],
          seed: 17,
        });
        const nats = run.resources.nats;
        if (nats === undefined) throw new Error('no private NATS');
        const { batches, url } = run;
        expect((await request<Health>(`${url}/health`)).body.queue_backend).toBe('jetstream');

        const publisher = run.publish();
        // 1. The whole service dies at once; its unacknowledged messages are redelivered.
        while (publisher.acknowledged() < batches * 0.25) await sleep(5);
        const pgid = run.service.child.pid ?? 0;
        expect(await run.service.stopGroup('SIGKILL')).toBe('SIGKILL');
        expect(await processGroupGone(pgid)).toEqual([]);
        const atServiceKill = publisher.acknowledged();
        await run.start();

        // 2. NATS dies: the service says so and refuses publishes until it is back.
        while (publisher.acknowledged() < batches * 0.6) await sleep(5);
        await nats.kill9();
        const atNatsKill = publisher.acknowledged();
        expect(atNatsKill, 'NATS killed mid-run').toBeLessThan(batches);
        const unhealthy = await healthBecomes<Health>(url, 503);
        expect(unhealthy.body).toMatchObject({ queue: false });
        await sleep(1000);
        await nats.start();
        await healthBecomes<Health>(url, 200);

        const { stats, state, report } = await run.settle(publisher);
        expect(report.statuses[503] ?? 0).toBeGreaterThan(0);
        console.log(
          `[nats-crash] service killed at ${atServiceKill}, NATS killed at ${atNatsKill} of ${batches} batches; ` +
            `statuses ${JSON.stringify(report.statuses)}, answers lost ${report.answersLost}; ` +
            `received ${stats.received}, unique ${stats.unique_processed}, duplicates ${stats.duplicate_dropped}; ` +
            `rows ${state.rows}; lost 0; ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      }, 240_000);
    },
  );
}
