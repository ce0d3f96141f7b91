/**
 * The Redis Cluster queue through a failover, on a private cluster of 3 masters with a replica
 * each (`appendonly yes`) and REDIS_MIN_REPLICAS=1: kill -9 of a master mid-run, its replica takes
 * over, the killed node comes back as a replica. Every event of every request answered 200 is
 * stored once and the counters add up: an entry was acknowledged only once a replica held it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { faultBackends, suiteTitle } from '../helpers/fault-resources.js';
import { startFaultService, type FaultService } from '../helpers/fault-service.js';
import { healthBecomes } from '../helpers/http.js';

const EVENTS = 30_000;

for (const backend of faultBackends((b) => b === 'postgres-redis-cluster', { focused: true })) {
  describe.skipIf(backend.skip !== undefined)(suiteTitle('Redis Cluster failover', backend), () => {
    let run: FaultService | undefined;
    afterEach(async () => {
      await run?.dispose();
    });

    it('kill -9 of a master mid-run: its replica takes over, nothing acknowledged lost, counts exact', async () => {
      const started = Date.now();
      run = await startFaultService(backend.name, {
        events: EVENTS,
        topics: ['a', 'b', 'c', 'd'],
        seed: 23,
      });
      const cluster = run.resources.redisCluster;
      if (cluster === undefined) throw new Error('no private Redis Cluster');
      const { batches, url } = run;

      const publisher = run.publish();
      while (publisher.acknowledged() < batches * 0.4) await sleep(5);
      const victim = await cluster.masterOf(0);
      await victim.kill9();
      const atKill = publisher.acknowledged();
      expect(atKill, 'master killed mid-run').toBeLessThan(batches);
      // The replica is promoted once the others agree the master failed (node timeout 1 s).
      let promoted = victim;
      for (let t = 0; t < 300 && promoted.port === victim.port; t++) {
        await sleep(100);
        promoted = await cluster.masterOf(0).catch(() => victim);
      }
      expect(promoted.port, 'a replica took over slot 0').not.toBe(victim.port);
      // The old master returns as the new master's replica, so WAIT can be met again there.
      await victim.start();
      await healthBecomes(url, 200);

      const { stats, state, report } = await run.settle(publisher);
      // During the failover publishers were told to retry (503), never given a server error.
      const serverErrors = run.service
        .output()
        .split('\n')
        .filter((line) => line.includes('"level":50'));
      expect(report.statuses[500], serverErrors.join('\n')).toBeUndefined();
      console.log(
        `[redis-cluster-failover] master :${victim.port} killed at ${atKill} of ${batches} batches, ` +
          `:${promoted.port} took over; statuses ${JSON.stringify(report.statuses)}, ` +
          `answers lost ${report.answersLost}; received ${stats.received}, unique ${stats.unique_processed}, ` +
          `duplicates ${stats.duplicate_dropped}; rows ${state.rows}; lost 0; ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }, 240_000);
  });
}
