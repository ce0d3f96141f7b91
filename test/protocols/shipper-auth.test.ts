/**
 * The shipper routes behind API keys, answered in each protocol's own error shape, and their
 * place in the OpenAPI description. The doors do not depend on the backend: embedded one only.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@elastic/elasticsearch';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/test-service.js';

const PUBLISH = 'p-0123456789abcdef';
const READ = 'r-0123456789abcdef';
const API_KEYS = `ingest:publish:${PUBLISH},viewer:read:${READ}`;

describe('shipper routes with API_KEYS', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.close();
  });

  it('need a publish key, and refuse in the protocol’s shape', async () => {
    svc = await startTestService('pglite-inbox', { API_KEYS });
    const topic = `auth-${randomUUID()}`;
    const otlp = JSON.stringify({
      resourceLogs: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: topic } }] },
          scopeLogs: [
            { logRecords: [{ timeUnixNano: '1714564800000000000', body: { stringValue: 'x' } }] },
          ],
        },
      ],
    });
    const post = (path: string, type: string, body: string, key?: string) =>
      request<unknown>(`${svc?.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': type, ...(key === undefined ? {} : { 'x-api-key': key }) },
        rawBody: body,
      });

    const otlpNone = await post('/v1/logs', 'application/json', otlp);
    expect(otlpNone.status).toBe(401);
    expect(otlpNone.body).toMatchObject({ code: 16 });
    const otlpRead = await post('/v1/logs', 'application/json', otlp, READ);
    expect(otlpRead.status).toBe(403);
    expect(otlpRead.body).toMatchObject({ code: 7 });
    expect((await post('/v1/logs', 'application/json', otlp, PUBLISH)).status).toBe(200);

    const bulk = `{"create":{"_index":"${topic}"}}\n{"@timestamp":"2024-05-01T12:00:00Z"}\n`;
    const esNone = await post('/es/_bulk', 'application/x-ndjson', bulk);
    expect(esNone.status).toBe(401);
    expect(esNone.body).toMatchObject({ status: 401, error: { type: 'security_exception' } });
    const client = new Client({ node: `${svc.url}/es`, headers: { 'x-api-key': PUBLISH } });
    try {
      const answer = await client.bulk({
        operations: [{ create: { _index: topic } }, { '@timestamp': '2024-05-01T12:00:00Z' }],
      });
      expect(answer.errors).toBe(false);
    } finally {
      await client.close();
    }

    const loki = JSON.stringify({
      streams: [{ stream: { topic }, values: [['1714564800000000000', 'line']] }],
    });
    const lokiNone = await post('/loki/api/v1/push', 'application/json', loki);
    expect(lokiNone.status).toBe(401);
    expect(lokiNone.body).toMatch(/^AGG_ERR_UNAUTHORIZED: /);
    expect((await post('/loki/api/v1/push', 'application/json', loki, PUBLISH)).status).toBe(204);

    await expect
      .poll(async () => {
        const s = await request<{ unique_processed: number }>(`${svc?.url}/stats`, {
          headers: { 'x-api-key': READ },
        });
        return s.body.unique_processed;
      })
      .toBe(3);
  });

  it('are described in the OpenAPI document under the shippers tag', async () => {
    svc = await startTestService('pglite-inbox');
    const doc = await request<{ paths: Record<string, Record<string, { tags?: string[] }>> }>(
      `${svc.url}/docs/json`,
    );
    expect(doc.status).toBe(200);
    for (const [path, method] of [
      ['/v1/logs', 'post'],
      ['/es/', 'get'],
      ['/es/_license', 'get'],
      ['/es/_bulk', 'post'],
      ['/es/{index}/_bulk', 'post'],
      ['/loki/api/v1/push', 'post'],
    ] as const) {
      expect(doc.body.paths[path]?.[method]?.tags, `${method} ${path}`).toEqual(['shippers']);
    }
  });
});
