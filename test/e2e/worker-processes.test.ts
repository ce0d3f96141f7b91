/**
 * One `npm start` on PostgreSQL forks a worker process beside the API process (WORKER_PROCESSES
 * defaults to 1 there), so the service uses two cores; SIGTERM stops both, and a worker process
 * that dies is started again without losing anything.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { event, publish, publishAll, request, waitForDrain } from '../helpers/http.js';
import { spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

/** Alive and not a zombie (an exited child whose dead parent's reaper has not collected it). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

/** The worker processes `pid` has forked, once there are any (waits up to 5 s). */
async function forkedWorkers(pid: number): Promise<number[]> {
  for (let i = 0; i < 50; i++) {
    const children = childrenOf(pid);
    if (children.length > 0) return children;
    await sleep(100);
  }
  return [];
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

const postgresBackends = suiteBackends((b) => b.startsWith('postgres'));
if (postgresBackends.length === 0) {
  describe.skip('worker processes (SKIPPED: BACKENDS selects no PostgreSQL backend)', () => {
    it('forks a worker process by default', () => undefined);
  });
}

for (const backend of postgresBackends) {
  describe.skipIf(backend.skip !== undefined)(
    `worker processes on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let resources: TestResources | undefined;
      let service: ServiceProcess | undefined;
      afterEach(async () => {
        await service?.stop('SIGKILL');
        await resources?.dispose();
      });

      it('forks a worker process by default, survives its death, and stops it on SIGTERM', async () => {
        resources = await createResources(backend.name);
        const env: Record<string, string> = { ...resources.env, CLAIM_IDLE_MS: '1000' };
        delete env.WORKER_PROCESSES;
        service = await spawnService(env);
        const pid = service.child.pid ?? 0;
        const workers = await forkedWorkers(pid);
        expect(workers).toHaveLength(1);
        const q = await request<{ worker_count: number; workers_enabled: boolean }>(
          `${service.url}/queue/stats`,
        );
        expect(q.body).toMatchObject({ worker_count: 2, workers_enabled: true });

        const topic = `t-${randomUUID().slice(0, 8)}`;
        const w = makeWorkload({ total: 4000, dupRate: 0.35, topics: [topic], idPrefix: topic });
        const publishing = publishAll(service.url, w.events, { batch: 50, concurrency: 4 });
        await sleep(100);
        process.kill(workers[0] ?? 0, 'SIGKILL');
        await publishing;
        const s = await waitForDrain(service.url, w.events.length, 60_000);
        expect(s).toMatchObject({ unique_processed: w.unique, duplicate_dropped: w.duplicates });
        const restarted = childrenOf(pid);
        expect(restarted).toHaveLength(1);
        expect(restarted[0]).not.toBe(workers[0]);

        expect(await service.stop('SIGTERM')).toBe(0);
        await sleep(200);
        expect(childrenOf(pid)).toEqual([]);
        for (const child of restarted) expect(isRunning(child)).toBe(false);
      });

      it('SIGTERM to the whole process group while the worker process still starts: exit 0', async () => {
        resources = await createResources(backend.name);
        const env: Record<string, string> = { ...resources.env };
        delete env.WORKER_PROCESSES;
        // The child may not have installed its signal handlers yet: it dies by the signal, which
        // is clean, since it held no batch.
        for (let i = 0; i < 3; i++) {
          service = await spawnService(env, { ownProcessGroup: true });
          expect(await service.stopGroup('SIGTERM'), service.output().slice(-2000)).toBe(0);
          service = undefined;
        }
      });

      it('an idle worker process is woken by the API process, not by its next poll', async () => {
        resources = await createResources(backend.name);
        // The longest idle poll allowed: a worker process that only polled would sleep through.
        const env: Record<string, string> = { ...resources.env, WORKER_BLOCK_MS: '60000' };
        delete env.WORKER_PROCESSES;
        service = await spawnService(env);
        expect(await forkedWorkers(service.child.pid ?? 0)).toHaveLength(1);
        // Idle long enough for the inbox worker's back-off (20 ms doubling) to sleep some 20 s at a
        // time: polls about 20.5 s and 41 s after it started (a few seconds after this point).
        // Publishing some 30 s from here falls well inside that sleep.
        await sleep(30_000);
        const topic = `t-${randomUUID().slice(0, 8)}`;
        const sent = await publish(service.url, [event(topic, 'wake')]);
        expect(sent.status).toBeLessThan(300);
        const publishedAt = Date.now();
        // Woken, it applies within milliseconds; polling, not before some 10 s. Five seconds tells
        // the two apart on the busiest machine.
        await waitForDrain(service.url, 1, 5_000);
        expect(Date.now() - publishedAt).toBeLessThan(5_000);
      }, 60_000);

      it('a worker process does not outlive an API process killed with -9', async () => {
        resources = await createResources(backend.name);
        const env: Record<string, string> = { ...resources.env };
        delete env.WORKER_PROCESSES;
        service = await spawnService(env);
        const pid = service.child.pid ?? 0;
        const workers = await forkedWorkers(pid);
        expect(workers).toHaveLength(1);
        expect(await service.stop('SIGKILL')).toBe('SIGKILL');
        let alive = true;
        for (let i = 0; i < 100 && alive; i++) {
          await sleep(100);
          alive = isRunning(workers[0] ?? 0);
        }
        let stat = '';
        try {
          stat = readFileSync(`/proc/${workers[0]}/stat`, 'utf8');
        } catch {
          stat = 'gone';
        }
        expect(alive, `${stat}\n${service.output().slice(-2000)}`).toBe(false);
      });
    },
  );
}
