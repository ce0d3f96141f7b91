/**
 * Readiness and liveness while a dependency is down: with its Redis killed, the service answers
 * 503 on /health and /health/ready alike (take it out of rotation) and 200 on /health/live (do
 * not restart it: a restart would not bring Redis back); both are 200 again once Redis is.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import {
  privateRedisMissing,
  startPrivateRedis,
  type PrivateRedis,
} from '../helpers/private-redis.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

const backend = suiteBackends((b) => b === 'postgres-redis')[0];
const skip =
  backend === undefined ? 'postgres-redis not requested' : (backend.skip ?? privateRedisMissing());

async function statusBecomes(url: string, status: number): Promise<Record<string, unknown>> {
  for (let attempt = 0; ; attempt++) {
    const reply = await request<Record<string, unknown>>(url);
    if (reply.status === status) return reply.body;
    if (attempt > 300) throw new Error(`${url} stayed ${reply.status}`);
    await sleep(100);
  }
}

describe.skipIf(skip !== undefined)(
  `health probes with Redis down${skip ? ` (SKIPPED: ${skip})` : ''}`,
  () => {
    let redis: PrivateRedis;
    let svc: TestService;
    beforeAll(async () => {
      redis = await startPrivateRedis();
      // The workers warn of every failed read while Redis is down: expected here.
      svc = await startTestService('postgres-redis', { REDIS_URL: redis.url, LOG_LEVEL: 'error' });
    });
    afterAll(async () => {
      await svc?.close();
      await redis?.dispose();
    });

    it('ready follows the dependencies, live only the process', async () => {
      expect((await request(`${svc.url}/health/ready`)).status).toBe(200);
      await redis.kill9();
      const down = await statusBecomes(`${svc.url}/health/ready`, 503);
      expect(down).toMatchObject({ status: 'unhealthy', queue: false });
      expect((await request(`${svc.url}/health`)).status).toBe(503);
      const live = await request<Record<string, unknown>>(`${svc.url}/health/live`);
      expect(live.status).toBe(200);
      expect(live.body.status).toBe('alive');
      await redis.start();
      await statusBecomes(`${svc.url}/health/ready`, 200);
    });
  },
);
