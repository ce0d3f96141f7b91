/**
 * API keys, scopes, rate limits and security headers, through the real server. The doors do not
 * depend on the backend, so this runs on the embedded one.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { event, request } from '../helpers/http.js';
import { spawnService } from '../helpers/process-service.js';
import { createResources, startTestService, type TestService } from '../helpers/test-service.js';

const PUBLISH = 'p-0123456789abcdef';
const READ = 'r-0123456789abcdef';
const ADMIN = 'a-0123456789abcdef';
const API_KEYS = `ingest:publish:${PUBLISH},viewer:read:${READ},ops:admin:${ADMIN}`;

function publishWith(base: string, key: string | undefined, events: unknown[]) {
  return request<{ code?: string; message?: string }>(`${base}/publish`, {
    method: 'POST',
    body: { events },
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  });
}

describe('security', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.close();
    svc = undefined;
  });

  it('with API_KEYS, each route needs a key with its scope; health and docs stay open', async () => {
    svc = await startTestService('pglite-inbox', { API_KEYS });
    const base = svc.url;
    const topic = `t-${randomUUID().slice(0, 8)}`;

    const none = await publishWith(base, undefined, [event(topic, 1)]);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('AGG_ERR_UNAUTHORIZED');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await publishWith(base, 'x'.repeat(18), [event(topic, 1)]);
    expect(wrong.status).toBe(401);
    expect(wrong.body.message).toBe('The API key is not valid');
    const reader = await publishWith(base, READ, [event(topic, 1)]);
    expect(reader.status).toBe(403);
    expect(reader.body).toMatchObject({ code: 'AGG_ERR_FORBIDDEN' });
    expect(reader.body.message).toContain('"viewer" lacks the publish scope');
    // Nothing of the refused requests was queued or stored.
    expect(await svc.service.store.countEvents()).toBe(0);
    expect((await svc.service.queue.depth()).messages).toBe(0);

    expect((await publishWith(base, PUBLISH, [event(topic, 1)])).status).toBe(200);
    // X-API-Key works as well as Authorization: Bearer; admin implies every scope.
    const viaHeader = await request(`${base}/publish`, {
      method: 'POST',
      body: { events: [event(topic, 2)] },
      headers: { 'x-api-key': ADMIN },
    });
    expect(viaHeader.status).toBe(200);

    for (const path of ['/stats', `/events?topic=${topic}`, '/queue/stats']) {
      expect((await request(`${base}${path}`)).status, path).toBe(401);
      expect((await request(`${base}${path}`, { headers: { 'x-api-key': PUBLISH } })).status).toBe(
        403,
      );
      expect((await request(`${base}${path}`, { headers: { 'x-api-key': READ } })).status).toBe(
        200,
      );
    }
    expect((await request(`${base}/health`)).status).toBe(200);
    expect((await request(`${base}/docs/json`)).status).toBe(200);
    const stats = await request<{ received: number }>(`${base}/stats`, {
      headers: { 'x-api-key': READ },
    });
    expect(stats.body.received).toBeLessThanOrEqual(2);
  });

  it('dead letters are admin-only; deleting one exists only with an admin key', async () => {
    svc = await startTestService('pglite-inbox', { API_KEYS });
    const base = svc.url;
    await svc.service.store.deadLetter({
      messageId: 'stream/1-0',
      body: '{"events":[]}',
      reason: 'test reason',
      eventCount: 0,
    });
    expect((await request(`${base}/dead-letters`, { headers: { 'x-api-key': READ } })).status).toBe(
      403,
    );
    const listed = await request<{ total: number; dead_letters: Record<string, unknown>[] }>(
      `${base}/dead-letters`,
      { headers: { 'x-api-key': ADMIN } },
    );
    expect(listed.status).toBe(200);
    expect(listed.body.total).toBe(1);
    expect(listed.body.dead_letters[0]).toMatchObject({
      message_id: 'stream/1-0',
      reason: 'test reason',
      body: '{"events":[]}',
    });
    const url = `${base}/dead-letters/${encodeURIComponent('stream/1-0')}`;
    expect((await request(url, { method: 'DELETE', headers: { 'x-api-key': READ } })).status).toBe(
      403,
    );
    expect((await request(url, { method: 'DELETE', headers: { 'x-api-key': ADMIN } })).status).toBe(
      204,
    );
    expect((await request(url, { method: 'DELETE', headers: { 'x-api-key': ADMIN } })).status).toBe(
      404,
    );
    // A NUL in the id is named at the door, not "the database refused the events".
    const nul = await request<{ code: string; message: string }>(`${base}/dead-letters/a%00`, {
      method: 'DELETE',
      headers: { 'x-api-key': ADMIN },
    });
    expect(nul.status).toBe(422);
    expect(nul.body).toMatchObject({
      code: 'AGG_ERR_INVALID_QUERY',
      message: 'message_id must not contain control characters (U+0000 at index 1)',
    });
    expect(await svc.service.store.deadLetterCount()).toBe(0);
    await svc.close();

    // Without any admin key the destructive route does not exist; reads stay open without keys.
    svc = await startTestService('pglite-inbox');
    const open = await request(`${svc.url}/dead-letters/x`, { method: 'DELETE' });
    expect(open.status).toBe(404);
    expect((await request(`${svc.url}/dead-letters`)).status).toBe(200);
  });

  it('rate limits count per key (or per address), answer 429 with Retry-After, spare /health', async () => {
    svc = await startTestService('pglite-inbox', {
      API_KEYS,
      RATE_LIMIT_MAX: '3',
      RATE_LIMIT_WINDOW_MS: '60000',
    });
    const base = svc.url;
    const topic = `t-${randomUUID().slice(0, 8)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await publishWith(base, PUBLISH, [event(topic, i)])).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await publishWith(base, PUBLISH, [event(topic, 9)]);
    expect(limited.body).toMatchObject({ code: 'AGG_ERR_RATE_LIMITED' });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another key has its own allowance; health checks are never limited.
    expect((await publishWith(base, ADMIN, [event(topic, 'admin')])).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await request(`${base}/health`)).status).toBe(200);
    // Exactly the accepted requests were stored (read from the store: reads count too).
    await expect
      .poll(async () => (await svc?.service.store.counters())?.uniqueProcessed, { timeout: 10_000 })
      .toBe(4);
  });

  it('answers carry security headers', async () => {
    svc = await startTestService('pglite-inbox');
    const reply = await request(`${svc.url}/health`);
    expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
    expect(reply.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(reply.headers.get('content-security-policy')).toContain("default-src 'self'");
    const docs = await request(`${svc.url}/docs/static/index.html`);
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).not.toContain('upgrade-insecure-requests');
  });

  it("the API description states each route's doors as the server applies them", async () => {
    /** The probes: open to all, and never rate limited. */
    const HEALTH_PATHS = ['/health', '/health/live', '/health/ready'];
    interface Operation {
      security?: unknown[];
      responses: Record<string, unknown>;
    }
    interface OpenApi {
      paths: Record<string, Record<string, Operation>>;
      components?: { securitySchemes?: Record<string, unknown> };
    }
    const operations = (spec: OpenApi) =>
      Object.entries(spec.paths).flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => ({ path, method, op })),
      );

    // Open API: no key is asked for anywhere, and no 401, 403 or 429 is promised.
    svc = await startTestService('pglite-inbox');
    const open = (await request<OpenApi>(`${svc.url}/docs/json`)).body;
    expect(open.components?.securitySchemes).toBeUndefined();
    expect(operations(open).length).toBeGreaterThan(10);
    for (const { path, method, op } of operations(open)) {
      expect(op.security, `${method} ${path}`).toBeUndefined();
      for (const status of ['401', '403', '429']) {
        expect(op.responses[status], `${method} ${path} ${status}`).toBeUndefined();
      }
    }
    await svc.close();

    // With keys and a rate limit, every route that refuses a keyless request says so, and only those.
    svc = await startTestService('pglite-inbox', { API_KEYS, RATE_LIMIT_MAX: '1000' });
    const keyed = (await request<OpenApi>(`${svc.url}/docs/json`)).body;
    expect(Object.keys(keyed.components?.securitySchemes ?? {})).toEqual([
      'bearerAuth',
      'apiKeyHeader',
    ]);
    const documented = operations(keyed).map((o) => `${o.method} ${o.path}`);
    expect(documented).toEqual(
      expect.arrayContaining([
        'get /metrics',
        'get /events/stream',
        'delete /dead-letters/{message_id}',
      ]),
    );
    for (const { path, method, op } of operations(keyed)) {
      const name = `${method} ${path}`;
      const url = `${svc.url}${path.replace(/\{[^}]+\}/g, 'x')}`;
      const keyless = await request(url, { method: method.toUpperCase() });
      const needsKey = keyless.status === 401;
      expect(op.security !== undefined, name).toBe(needsKey);
      expect(op.responses['401'] !== undefined, name).toBe(needsKey);
      expect(op.responses['403'] !== undefined, name).toBe(needsKey);
      expect(op.responses['429'] !== undefined, name).toBe(!HEALTH_PATHS.includes(path));
    }
    expect(
      operations(keyed)
        .filter((o) => o.op.security === undefined)
        .map((o) => o.path)
        .sort(),
    ).toEqual(HEALTH_PATHS);
  });

  it('errors outside the routes keep their status and the error body', async () => {
    svc = await startTestService('pglite-inbox');
    /** Our error body, and only it. */
    const expectErrorBody = (body: unknown, statusCode: number, code: string) => {
      expect(Object.keys(body as object).sort()).toEqual([
        'code',
        'details',
        'error',
        'message',
        'statusCode',
      ]);
      expect(body).toMatchObject({ statusCode, code, error: STATUS_CODES[statusCode] });
    };
    const badPath = await request<Record<string, unknown>>(`${svc.url}/events/%E0%A4%A`);
    expect(badPath.status).toBe(400);
    expectErrorBody(badPath.body, 400, 'AGG_ERR_BAD_URL');
    expect(badPath.headers.get('content-type')).toContain('application/json');
    expect(badPath.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(badPath.headers.get('x-content-type-options')).toBe('nosniff');

    const file = `${svc.url}/dashboard/dashboard.css`;
    const range = await request<Record<string, unknown>>(file, {
      headers: { range: 'bytes=99999999-' },
    });
    expect(range.status).toBe(416);
    expectErrorBody(range.body, 416, 'AGG_ERR_RANGE_NOT_SATISFIABLE');
    expect(range.headers.get('content-range')).toMatch(/^bytes \*\/\d+$/);
    const precondition = await request<Record<string, unknown>>(file, {
      headers: { 'if-match': '"not-this-file"' },
    });
    expect(precondition.status).toBe(412);
    expectErrorBody(precondition.body, 412, 'AGG_ERR_PRECONDITION_FAILED');
    // The file itself is still served.
    expect((await request(file)).status).toBe(200);
  });

  it('keys never reach the log, even at trace level', async () => {
    const resources = await createResources('pglite-inbox');
    const service = await spawnService({ ...resources.env, API_KEYS, LOG_LEVEL: 'trace' });
    try {
      await publishWith(service.url, PUBLISH, [event('logged', 1)]);
      await publishWith(service.url, `${PUBLISH}-wrong`, [event('logged', 2)]);
      await request(`${service.url}/stats`, { headers: { 'x-api-key': READ } });
    } finally {
      expect(await service.stop('SIGTERM')).toBe(0);
      await resources.dispose();
    }
    // The request lines (debug) were written, and none holds a key.
    expect(service.output()).toContain('"status":401');
    for (const secret of [PUBLISH, READ, ADMIN]) expect(service.output()).not.toContain(secret);
  });
});
