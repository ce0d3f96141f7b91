/**
 * SIGTERM under load. process-restart.test.ts stops an idle service; here publishers are busy and
 * the workers have a backlog when the signal comes. The service stops accepting, answers the
 * requests it is working on, finishes the batches in hand, stops its worker processes and exits
 * 0 within the shutdown bound; what it had not applied stays queued. After a restart on the same
 * port and data, every event answered 200 (before, during or after the stop) is stored once and
 * the counters add up. On every backend, with private servers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { faultBackends, suiteTitle } from '../helpers/fault-resources.js';
import { startFaultService, type FaultService } from '../helpers/fault-service.js';
import { processGroupGone } from '../helpers/process-group.js';

const EVENTS = 30_000;
/** The shutdown bound asserted (SHUTDOWN_TIMEOUT_MS keeps its default, 10 s). */
const STOP_BOUND_MS = 10_000;

for (const backend of faultBackends()) {
  describe.skipIf(backend.skip !== undefined)(suiteTitle('SIGTERM under load', backend), () => {
    let run: FaultService | undefined;
    afterEach(async () => {
      await run?.dispose();
    });

    it('stops accepting, answers what is in flight, exits 0 in time; nothing acknowledged lost', async () => {
      const started = Date.now();
      run = await startFaultService(backend.name, { events: EVENTS, topics: ['a', 'b'], seed: 17 });
      const { batches, resources, workload: w } = run;
      const first = run.service;
      // Answers counted by phase: while the service stops (signal sent, process not yet exited).
      let phase: 'running' | 'stopping' | 'down' = 'running';
      const whileStopping: Record<number, number> = {};
      const publisher = run.publish((status) => {
        if (phase === 'stopping') whileStopping[status] = (whileStopping[status] ?? 0) + 1;
      });

      while (publisher.acknowledged() < batches * 0.4) await sleep(5);
      const pgid = first.child.pid ?? 0;
      const signalled = Date.now();
      phase = 'stopping';
      const code = await first.stop('SIGTERM');
      const stopMs = Date.now() - signalled;
      phase = 'down';
      const acknowledgedAtStop = publisher.acknowledged();
      expect(acknowledgedAtStop, 'stopped mid-run').toBeLessThan(batches);
      expect(code, first.output().slice(-3000)).toBe(0);
      expect(stopMs).toBeLessThan(STOP_BOUND_MS);
      expect(first.output()).toContain('"clean":true');
      // Requests the service was working on were answered (200); new ones were turned away
      // (503 from the closing server, or the connection refused once it stopped listening).
      expect(whileStopping[200] ?? 0, JSON.stringify(whileStopping)).toBeGreaterThan(0);
      expect((whileStopping[503] ?? 0) + (whileStopping[-1] ?? 0)).toBeGreaterThan(0);
      // The worker processes it forked stopped with it.
      expect(await processGroupGone(pgid)).toEqual([]);

      // Stopped cleanly: nothing is half-applied, the counters describe the rows exactly.
      const between = await resources.readState();
      expect(between.uniqueProcessed).toBe(between.rows);
      expect(between.received).toBe(between.uniqueProcessed + between.duplicateDropped);

      await run.start();
      const { stats, state, report } = await run.settle(publisher);

      console.log(
        `[sigterm ${backend.name}] SIGTERM at ${acknowledgedAtStop}/${batches} batches acknowledged; ` +
          `exit ${code} after ${stopMs} ms; answers while stopping ${JSON.stringify(whileStopping)} ` +
          `(-1 refused, 0 lost); applied before the stop: ${between.received} events; ` +
          `${EVENTS} events (${w.unique} unique) acknowledged in ${report.attempts} requests, ` +
          `statuses ${JSON.stringify(report.statuses)}, answers lost ${report.answersLost} ` +
          `${JSON.stringify(report.lostReasons)}; ` +
          `received ${stats.received}, unique ${stats.unique_processed}, duplicates ${stats.duplicate_dropped}; ` +
          `rows ${state.rows}; lost 0; ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }, 180_000);
  });
}
