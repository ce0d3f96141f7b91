/**
 * Elasticsearch bulk ingestion through the official `@elastic/elasticsearch` client (version 8)
 * and its bulk helper, on every backend: a batch, its retry, the per-item answers, conflicts
 * under reject-conflicts, and the errors in Elasticsearch's shape.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@elastic/elasticsearch';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeBulk } from '../../src/ingest/es-bulk.js';
import { request, stats, waitForDrain } from '../helpers/http.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';
import { sourceCounts, topicEvents, verifiedConsistent } from '../helpers/topic-events.js';

describe('Elasticsearch bulk decoding', () => {
  it('keeps each document as the exact text that arrived', () => {
    const doc = '{"@timestamp":"2024-05-01T12:00:00Z","n":12345678901234567890123,"f":1.10}';
    const [item] = decodeBulk(`{"create":{"_index":"logs"}}\n${doc}\n`, undefined);
    expect(item?.event?.payloadJson).toBe(doc);
    expect(item?.event?.event_id).toMatch(/^es-[\w-]{43}$/);
  });

  it('reads @timestamp as ISO 8601, a date or epoch milliseconds', () => {
    const ts = (value: unknown) =>
      decodeBulk(`{"index":{}}\n${JSON.stringify({ '@timestamp': value })}\n`, 'i')[0]?.event
        ?.timestamp;
    expect(ts('2024-05-01T12:00:00.5+02:00')).toBe('2024-05-01T12:00:00.5+02:00');
    expect(ts('2024-05-01')).toBe('2024-05-01T00:00:00Z');
    expect(ts(1714564800000)).toBe('2024-05-01T12:00:00.000Z');
    expect(ts('1714564800000')).toBe('2024-05-01T12:00:00.000Z');
    expect(ts('yesterday')).toBeUndefined();
  });
});

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `Elasticsearch bulk on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      let index: string;
      let client: Client;

      beforeEach(async () => {
        svc = await startTestService(backend.name);
        index = `es-${randomUUID()}`;
        client = new Client({ node: `${svc.url}/es` });
      });
      afterEach(async () => {
        await client?.close();
        await svc?.close();
      });

      it('answers the client as an Elasticsearch 8 cluster', async () => {
        const info = await client.info();
        expect(info.version.number).toMatch(/^8\./);
        const raw = await fetch(`${svc.url}/es/`);
        expect(raw.headers.get('x-elastic-product')).toBe('Elasticsearch');
        const license = await client.license.get();
        expect(license.license).toMatchObject({ status: 'active', type: 'basic' });
      });

      it('stores what the bulk helper sends, and its retry only as duplicates', async () => {
        const docs = [
          { '@timestamp': '2024-05-01T12:00:00Z', message: 'one', host: { name: 'web-1' } },
          { '@timestamp': '2024-05-01T12:00:01Z', message: 'two', 'agent.name': 'beat-7' },
          { '@timestamp': 1714564802000, message: 'three', level: 3 },
          { '@timestamp': '2024-05-01T12:00:03Z', message: 'four', id: 'given' },
        ];
        const send = () =>
          client.helpers.bulk<(typeof docs)[number]>({
            datasource: docs,
            onDocument: (doc) => ({
              create: doc.id === undefined ? { _index: index } : { _index: index, _id: doc.id },
            }),
          });
        const first = await send();
        expect(first).toMatchObject({ total: 4, successful: 4, failed: 0 });
        const retry = await send();
        expect(retry).toMatchObject({ total: 4, successful: 4, failed: 0 });

        const s = await stats(svc.url);
        expect(s).toMatchObject({ received: 8, unique_processed: 4, duplicate_dropped: 4 });
        const rows = await topicEvents(svc.url, index);
        expect(rows).toHaveLength(4);
        const bySource = Object.fromEntries(
          rows.map((r) => [(r.payload as { message: string }).message, r]),
        );
        expect(bySource.one?.source).toBe('web-1');
        expect(bySource.two?.source).toBe('beat-7');
        expect(bySource.three?.source).toBe(index);
        expect(bySource.three?.payload).toEqual(docs[2]);
        expect(bySource.four?.event_id).toBe('given');
        expect(Date.parse(bySource.three?.timestamp ?? '')).toBe(1714564802000);
        const perSource = await sourceCounts(svc.url, index);
        expect(perSource.find((p) => p.source === 'web-1')).toMatchObject({
          events: 2,
          unique: 1,
          duplicates: 1,
        });
        expect(await verifiedConsistent(svc.url)).toBe(true);
      });

      it('answers created, then noop for a duplicate, item by item', async () => {
        const operations = [
          { index: { _index: index, _id: 'a' } },
          { '@timestamp': '2024-05-01T12:00:00Z', message: 'a' },
          { create: { _id: 'b' } },
          { '@timestamp': '2024-05-01T12:00:00Z', message: 'b' },
        ];
        const first = await client.bulk({ index, operations });
        expect(first.errors).toBe(false);
        expect(first.items.map((i) => Object.values(i)[0]?.status)).toEqual([201, 201]);
        expect(first.items[1]?.create).toMatchObject({
          _index: index,
          _id: 'b',
          result: 'created',
        });
        const again = await client.bulk({ index, operations });
        expect(again.errors).toBe(false);
        expect(again.items.map((i) => Object.values(i)[0])).toMatchObject([
          { status: 200, result: 'noop' },
          { status: 200, result: 'noop' },
        ]);
        expect(await svc.service.store.countEvents(index)).toBe(2);
      });

      it('takes a gzip-compressed bulk (Content-Encoding is decoded before the parsers)', async () => {
        const gzipClient = new Client({ node: `${svc.url}/es`, compression: true });
        try {
          const reply = await gzipClient.bulk({
            operations: [{ create: { _index: index } }, { '@timestamp': '2024-05-01T12:00:00Z' }],
          });
          expect(reply.items[0]?.create?.status).toBe(201);
        } finally {
          await gzipClient.close();
        }
        expect(await svc.service.store.countEvents(index)).toBe(1);
      });

      it('refuses bad items and update/delete alone, and stores the rest', async () => {
        const reply = await client.bulk({
          operations: [
            { create: { _index: index } },
            { '@timestamp': '2024-05-01T12:00:00Z', message: 'kept 1' },
            { update: { _index: index, _id: 'x' } },
            { doc: { message: 'changed' } },
            { delete: { _index: index, _id: 'x' } },
            { create: { _index: index } },
            { message: 'no timestamp' },
            { create: { _index: index } },
            { '@timestamp': '2024-05-01T12:00:00Z', message: 'has \u0000 NUL' },
            { create: { _index: index, _id: 'y'.repeat(300) } },
            { '@timestamp': '2024-05-01T12:00:00Z', message: 'id too long' },
            { create: { _index: index } },
            // The client passes a string line as it is: a number no 64-bit float can hold.
            '{"@timestamp":"2024-05-01T12:00:00Z","message":"huge","n":1e400}',
            { create: { _index: 'bad\nindex' } },
            { '@timestamp': '2024-05-01T12:00:00Z', message: 'bad index' },
            { create: { _index: index } },
            { '@timestamp': '2024-05-01T12:00:00Z', message: 'kept 2' },
          ],
        });
        expect(reply.errors).toBe(true);
        const answers = reply.items.map((i) => Object.values(i)[0]);
        expect(answers.map((a) => a?.status)).toEqual([
          201, 400, 400, 400, 400, 400, 400, 400, 201,
        ]);
        expect(answers[1]?.error?.reason).toMatch(/append-only/);
        expect(answers[3]?.error?.reason).toMatch(/@timestamp/);
        expect(answers[4]?.error?.reason).toMatch(/NUL/);
        expect(answers[5]?.error?.reason).toMatch(/event_id must be at most 255/);
        expect(answers[6]?.error?.reason).toMatch(/the number 1e400 is too large/);
        expect(answers[7]?.error?.reason).toMatch(/topic/);
        const rows = await topicEvents(svc.url, index);
        expect(rows.map((r) => (r.payload as { message: string }).message).sort()).toEqual([
          'kept 1',
          'kept 2',
        ]);
      });

      it('refuses a malformed action line whole, in Elasticsearch error shape', async () => {
        const reply = await request<{ status: number; error: { type: string; reason: string } }>(
          `${svc.url}/es/_bulk`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/x-ndjson' },
            rawBody: `{"create":{"_index":"${index}"}}\n{"@timestamp":"2024-05-01T12:00:00Z"}\n{"create":\n`,
          },
        );
        expect(reply.status).toBe(400);
        expect(reply.headers.get('x-elastic-product')).toBe('Elasticsearch');
        expect(reply.body.error.type).toBe('parse_exception');
        expect(reply.body.error.reason).toMatch(/line \[3\]/);
        const empty = await request(`${svc.url}/es/_bulk`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson' },
          rawBody: '',
        });
        expect(empty.status).toBe(400);
        expect((await stats(svc.url)).received).toBe(0);
      });

      it('answers 409 for a conflicting duplicate under reject-conflicts, storing the rest', async () => {
        await svc.stop();
        const strict = await startTestService(
          backend.name,
          { DUPLICATE_POLICY: 'reject-conflicts' },
          svc.resources,
        );
        const strictClient = new Client({ node: `${strict.url}/es` });
        try {
          const doc = (message: string) => ({ '@timestamp': '2024-05-01T12:00:00Z', message });
          await strictClient.bulk({
            index,
            operations: [{ create: { _id: 'a' } }, doc('original')],
          });
          const reply = await strictClient.bulk({
            index,
            operations: [
              { create: { _id: 'a' } },
              doc('changed'),
              { create: { _id: 'b' } },
              doc('new'),
              { create: { _id: 'a' } },
              doc('original'),
            ],
          });
          const answers = reply.items.map((i) => Object.values(i)[0]);
          expect(answers.map((a) => a?.status)).toEqual([409, 201, 200]);
          expect(answers[0]?.error?.type).toBe('version_conflict_engine_exception');
          const rows = await topicEvents(strict.url, index);
          expect(
            rows.map((r) => [r.event_id, (r.payload as { message: string }).message]).sort(),
          ).toEqual([
            ['a', 'original'],
            ['b', 'new'],
          ]);
          const s = await waitForDrain(strict.url, 3);
          expect(s.received).toBe(s.unique_processed + s.duplicate_dropped);
        } finally {
          await strictClient.close();
          await strict.stop();
        }
      });
    },
  );
}
