/**
 * POST /publish takes the shapes other publishers send: the envelope, a bare event, a bare array
 * and NDJSON (also compressed, also in atomic mode). Each is stored exactly as the envelope would
 * be, numbers as written, and counted once; the answer has the same form whatever the shape.
 * Runs on every backend.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, waitForDrain } from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

interface StoredRow {
  event_id: string;
  source: string;
  timestamp: string;
  payload: Record<string, unknown>;
}

/** An event as JSON text, with a payload whose numbers a double would not keep. */
function eventText(topic: string, id: string): string {
  return `{"topic":${JSON.stringify(topic)},"event_id":"${id}","timestamp":"2024-05-01T12:00:00+02:00","source":"shape","payload":{"id":"${id}","big":123456789012345678901234567890,"exact":0.10000000000000000000001,"tiny":1e-7}}`;
}

async function post(
  base: string,
  body: string | Buffer,
  contentType: string,
  query = '',
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${base}/publish${query}`, {
    method: 'POST',
    body,
    headers: { 'content-type': contentType, ...headers },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `publish shapes on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      beforeAll(async () => {
        svc = await startTestService(backend.name);
      });
      afterAll(async () => {
        await svc?.close();
      });

      it('stores every shape as the envelope, numbers exactly as written', async () => {
        const topic = `shapes-${randomUUID()}`;
        const e = (id: string) => eventText(topic, id);
        const sends: {
          id: string[];
          body: string | Buffer;
          type: string;
          headers?: Record<string, string>;
        }[] = [
          { id: ['env'], body: `{"events":[${e('env')}]}`, type: 'application/json' },
          { id: ['bare'], body: ` ${e('bare')} `, type: 'application/json' },
          {
            id: ['arr-1', 'arr-2'],
            body: `[${e('arr-1')},\n${e('arr-2')}]`,
            type: 'application/json',
          },
          {
            id: ['nd-1', 'nd-2', 'nd-3'],
            body: `${e('nd-1')}\r\n\n  \n${e('nd-2')}\n${e('nd-3')}`,
            type: 'application/x-ndjson',
          },
          {
            id: ['ndgz-1', 'ndgz-2'],
            body: gzipSync(`${e('ndgz-1')}\n${e('ndgz-2')}\n`),
            type: 'application/x-ndjson; charset=utf-8',
            headers: { 'content-encoding': 'gzip' },
          },
          {
            id: ['bom'],
            body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(e('bom'))]),
            type: 'application/json',
          },
        ];
        let accepted = 0;
        for (const send of sends) {
          const reply = await post(svc.url, send.body, send.type, '', send.headers);
          expect(reply.status, JSON.stringify(reply.body)).toBe(200);
          expect(reply.body).toMatchObject({ accepted: send.id.length, queued: send.id.length });
          accepted += send.id.length;
        }
        const stats = await waitForDrain(svc.url, accepted, 20_000);
        expect(stats.unique_processed).toBe(accepted);
        const listing = await fetch(
          `${svc.url}/events?topic=${encodeURIComponent(topic)}&limit=100`,
        );
        const rows = (await listing.json()) as StoredRow[];
        // Spliced, never re-serialised: the digits a double would lose are all in the table.
        // (Read on PostgreSQL, where a test can open its own connection; PGlite runs the same
        // SQL on the same bytes.)
        const databaseUrl = svc.resources.databaseUrl;
        if (databaseUrl !== undefined) {
          const client = new pg.Client({ connectionString: databaseUrl });
          await client.connect();
          try {
            const stored = await client.query<{ big: string; exact: string }>(
              `SELECT payload->>'big' AS big, payload->>'exact' AS exact FROM events WHERE topic = $1`,
              [topic],
            );
            expect(stored.rows).toHaveLength(rows.length);
            for (const r of stored.rows) {
              expect(r).toEqual({
                big: '123456789012345678901234567890',
                exact: '0.10000000000000000000001',
              });
            }
          } finally {
            await client.end();
          }
        }
        expect(rows.map((r) => r.event_id).sort()).toEqual(sends.flatMap((s) => s.id).sort());
        for (const row of rows) {
          expect(row.source).toBe('shape');
          expect(Date.parse(row.timestamp)).toBe(Date.parse('2024-05-01T10:00:00Z'));
          expect(row.payload.id).toBe(row.event_id);
          expect(row.payload.tiny).toBe(1e-7);
        }
        expect(await svc.service.store.deadLetterCount()).toBe(0);
      });

      it('counts every shape the same in atomic mode, duplicates included', async () => {
        const topic = `shapes-${randomUUID()}`;
        const e = (id: string) => eventText(topic, id);
        const first = await post(
          svc.url,
          `[${e('a')},${e('b')},${e('a')}]`,
          'application/json',
          '?atomic=true',
        );
        expect(first.status, JSON.stringify(first.body)).toBe(200);
        expect(first.body).toMatchObject({ accepted: 3, queued: 0, processed: 2, duplicates: 1 });
        const bare = await post(svc.url, e('b'), 'application/json', '?atomic=true&detail=true');
        expect(bare.body).toMatchObject({
          accepted: 1,
          processed: 0,
          duplicates: 1,
          events: [{ index: 0, outcome: 'duplicate', conflict: false }],
        });
        const nd = await post(
          svc.url,
          `${e('c')}\n${e('a')}\n`,
          'application/x-ndjson',
          '?atomic=true&detail=true',
        );
        expect(nd.body).toMatchObject({
          accepted: 2,
          processed: 1,
          duplicates: 1,
          events: [
            { index: 0, outcome: 'stored' },
            { index: 1, outcome: 'duplicate' },
          ],
        });
        const listed = await request<StoredRow[]>(
          `${svc.url}/events?topic=${encodeURIComponent(topic)}&limit=100`,
        );
        expect(listed.body.map((r) => r.event_id).sort()).toEqual(['a', 'b', 'c']);
      });

      it('describes the shapes in the API description', async () => {
        const doc = await request<{
          paths: Record<string, { post?: { requestBody?: { content: Record<string, unknown> } } }>;
        }>(`${svc.url}/docs/json`);
        const content = doc.body.paths['/publish']?.post?.requestBody?.content ?? {};
        expect(Object.keys(content).sort()).toEqual(['application/json', 'application/x-ndjson']);
        expect(JSON.stringify(content['application/json'])).toContain('anyOf');
      });
    },
  );
}
