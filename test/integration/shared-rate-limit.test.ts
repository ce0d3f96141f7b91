/**
 * The rate limit is one for all API processes when Redis is configured: two service processes on
 * the same Redis (and database) with RATE_LIMIT_MAX=4 accept 4 publishes from one client between
 * them, not 4 each, and refuse the rest with 429; exactly the accepted events are stored.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { event, request } from '../helpers/http.js';
import { spawnService, type ServiceProcess } from '../helpers/process-service.js';
import { readPostgresState } from '../helpers/stored-state.js';
import { createResources, suiteBackends, type TestResources } from '../helpers/test-service.js';

const backend = suiteBackends((b) => b === 'postgres-redis')[0];

describe.skipIf(backend === undefined || backend.skip !== undefined)(
  `rate limit shared by API processes${backend?.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
  () => {
    const services: ServiceProcess[] = [];
    let resources: TestResources | undefined;
    afterEach(async () => {
      for (const s of services.splice(0)) await s.stop();
      await resources?.dispose();
    });

    it('two API processes allow the limit once between them', async () => {
      resources = await createResources('postgres-redis');
      const env = { ...resources.env, RATE_LIMIT_MAX: '4', RATE_LIMIT_WINDOW_MS: '60000' };
      services.push(await spawnService(env), await spawnService(env));
      const [a, b] = services as [ServiceProcess, ServiceProcess];
      const topic = `test-${randomUUID()}`;
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const target = i % 2 === 0 ? a : b;
        const reply = await request(`${target.url}/publish`, {
          method: 'POST',
          body: { events: [event(topic, i)] },
        });
        statuses.push(reply.status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429, 429, 429]);
      // Read from the database: the processes' own /stats is behind the same limit.
      await expect
        .poll(async () => (await readPostgresState(resources?.databaseUrl ?? '')).rows, {
          timeout: 20_000,
        })
        .toBe(4);
      expect((await readPostgresState(resources.databaseUrl ?? '')).received).toBe(4);
    }, 60_000);
  },
);
