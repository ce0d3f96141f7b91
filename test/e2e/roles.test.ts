/**
 * Scale-out by role: one ROLE=api process and two ROLE=worker processes, separate programs as
 * they would run on separate hosts, share one queue and one PostgreSQL and end with exact counts;
 * both workers take part.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { makeWorkload } from '../../src/cli/workload.js';
import { publishAll, waitForDrain } from '../helpers/http.js';
import { spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

const backends = suiteBackends((b) => b.startsWith('postgres'));
if (backends.length === 0) {
  describe.skip('roles (SKIPPED: BACKENDS selects no PostgreSQL backend)', () => {
    it('one API and two worker processes', () => undefined);
  });
}

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(
    `roles on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let resources: TestResources | undefined;
      const running: ServiceProcess[] = [];
      afterEach(async () => {
        for (const p of running.splice(0)) await p.stop('SIGKILL');
        await resources?.dispose();
      });

      it('one API process and two worker processes: exact counts, both workers apply', async () => {
        resources = await createResources(backend.name);
        // Small batches and a short idle poll, so both workers find work before it is all done.
        const env = {
          ...resources.env,
          WORKER_PROCESSES: '0',
          LOG_LEVEL: 'debug',
          WORKER_BATCH_MESSAGES: '5',
          WORKER_BLOCK_MS: '50',
        };
        const api = await spawnService({ ...env, ROLE: 'api' });
        running.push(api);
        const workers = await Promise.all(
          ['w1', 'w2'].map((id) =>
            spawnService(
              { ...env, ROLE: 'worker', INSTANCE_ID: `roles-${id}` },
              { waitForHealth: false },
            ),
          ),
        );
        running.push(...workers);
        // Publish only once both have started: on a slow machine one worker could otherwise drain
        // everything while the other is still connecting (seen once in a full run).
        const deadline = Date.now() + 30_000;
        while (!workers.every((p) => p.output().includes('"msg":"log aggregator started"'))) {
          if (Date.now() > deadline) throw new Error('the worker processes did not start in 30 s');
          await new Promise((resolve) => setTimeout(resolve, 50));
        }

        const topics = ['a', 'b', 'c'].map((t) => `${t}-${randomUUID().slice(0, 6)}`);
        const w = makeWorkload({ total: 20_000, dupRate: 0.35, topics, idPrefix: topics[0] ?? '' });
        await publishAll(api.url, w.events, { batch: 100, concurrency: 8 });
        const s = await waitForDrain(api.url, w.events.length, 90_000);
        expect(s).toMatchObject({
          received: w.events.length,
          unique_processed: w.unique,
          duplicate_dropped: w.duplicates,
        });
        // The API process applies nothing itself; each worker process applied some batches.
        expect(api.output()).not.toContain('"batch applied"');
        for (const worker of workers) expect(worker.output()).toContain('"msg":"batch applied"');

        for (const p of [api, ...workers]) expect(await p.stop('SIGTERM')).toBe(0);
        running.splice(0);
      });
    },
  );
}
