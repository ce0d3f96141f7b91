/**
 * Finding log lines: GET /events with `q` (search words and phrases) and `field.<path>` (exact
 * payload values), combined with topic, source, time range and the cursor; GET /events/histogram
 * over the same filters; the live stream with the same filters; and the refusals of bad queries.
 * On every backend. The expected answers are computed here, from the events as published, by a
 * predicate written for this test (not the service's own matcher).
 *
 * The topic holds more events than the bounded scan reads (store/sql/search.ts), and the rare
 * tokens sit in its oldest events, so both the scan and the index path answer.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEvent } from '../../src/log-event.js';
import { publishAll, request, waitForDrain } from '../helpers/http.js';
import { openStream } from '../helpers/sse.js';
import { startTestService, suiteBackends, type TestService } from '../helpers/test-service.js';

const COUNT = 5200;
const BASE_MS = Date.parse('2026-03-01T00:00:00Z');
/** Event i is at BASE + i * 7 s: the topic spans about 10 hours. */
const at = (i: number) => new Date(BASE_MS + i * 7000).toISOString();

function payloadOf(i: number): Record<string, unknown> {
  const p: Record<string, unknown> = {
    level: ['info', 'warn', 'error'][i % 3],
    msg: `GET /api/v1/cart/${i} took ${i % 50}ms`,
    req: `req-${(i * 7919).toString(16).padStart(6, '0')}`,
    http: { status: i % 10 === 0 ? 500 : 200, path: `/api/v1/cart/${i}` },
    tags: [`tag-${i % 4}`],
    nested: { deep: { ip: `10.0.${i % 5}.${i % 7}` } },
    count: 12345,
  };
  if (i === 17) {
    p.msg = 'ERR_TIMEOUT upstream: Connection Refused by 10.0.3.77';
    p.req = 'req-7f3a9c';
  }
  // The rare token's digit-bearing word in another token: found by the index, not a match.
  if (i === 19) p.job = 'job-7f3a9c';
  if (i === 23) p.msg = 'refused the connection';
  if (i === 29) p.file = 'C:\\logs\\app.log';
  if (i === 31) p.cols = 'col1\tcol2';
  return p;
}

/** The strings of a value at any depth (numbers, booleans and keys are not searched). */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(strings);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(strings);
  return [];
}

const contains = (e: LogEvent, term: string) =>
  [e.source, ...strings(e.payload)].some((s) => s.toLowerCase().includes(term.toLowerCase()));

const at2 = (value: unknown, path: string[]): unknown =>
  path.reduce<unknown>(
    (v, key) =>
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? (v as Record<string, unknown>)[key]
        : undefined,
    value,
  );

for (const backend of suiteBackends()) {
  describe.skipIf(backend.skip !== undefined)(
    `search, field filters and histogram on ${backend.name}${backend.skip ? ` (SKIPPED: ${backend.skip})` : ''}`,
    () => {
      let svc: TestService;
      const topic = `search-${randomUUID()}`;
      const other = `search-other-${randomUUID()}`;
      const events: LogEvent[] = Array.from({ length: COUNT }, (_, i) => ({
        topic,
        event_id: `e${i}`,
        timestamp: at(i),
        source: i % 100 === 7 ? 'db-7' : `web-${i % 3}`,
        payload: payloadOf(i),
      }));
      // Another topic with the same rare token: a topic filter must leave it out.
      const others: LogEvent[] = [
        {
          topic: other,
          event_id: 'o1',
          timestamp: at(5),
          source: 'web-0',
          payload: { req: 'req-7f3a9c' },
        },
      ];
      const all = [...events, ...others];

      beforeAll(async () => {
        svc = await startTestService(backend.name);
        await publishAll(svc.url, all, { batch: 500, concurrency: 2 });
        await waitForDrain(svc.url, all.length);
      }, 120_000);
      afterAll(async () => {
        await svc?.close();
      });

      /** Every page of a listing through the cursor, as event ids. */
      async function listAll(query: string, limit = 100): Promise<string[]> {
        const ids: string[] = [];
        let after: string | null = null;
        for (let pages = 0; pages < 100; pages++) {
          const cursor: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
          const reply = await request<{ event_id: string; topic: string }[]>(
            `${svc.url}/events?${query}&limit=${limit}${cursor}`,
          );
          expect(reply.status, JSON.stringify(reply.body)).toBe(200);
          ids.push(...reply.body.map((e) => `${e.topic === topic ? '' : 'other:'}${e.event_id}`));
          after = reply.headers.get('x-next-cursor');
          if (after === null) return ids;
        }
        throw new Error('more than 100 pages');
      }

      /** Ids of the published events that pass `keep`, newest first. */
      const expected = (keep: (e: LogEvent) => boolean, from: readonly LogEvent[] = events) =>
        from
          .filter(keep)
          .sort((a, b) => Date.parse(b.timestamp) - Date.parse(a.timestamp))
          .map((e) => `${e.topic === topic ? '' : 'other:'}${e.event_id}`);

      const T = `topic=${encodeURIComponent(topic)}`;
      const enc = encodeURIComponent;
      const cc = (at: string) => `must not contain control characters (${at})`;

      const SEARCHES: [string, string, (e: LogEvent) => boolean][] = [
        ['a rare token, whole', 'req-7f3a9c', (e) => contains(e, 'req-7f3a9c')],
        ['an upper-case token, any case', 'err_timeout', (e) => contains(e, 'ERR_TIMEOUT')],
        ['an IP address', '10.0.3.77', (e) => contains(e, '10.0.3.77')],
        ['a path', '/api/v1/cart/25', (e) => contains(e, '/api/v1/cart/25')],
        ['the source', 'db-7', (e) => contains(e, 'db-7')],
        // One line in fifty: more than a page, fewer than a page in the first rows scanned.
        ['a phrase in one line of fifty', '"took 7ms"', (e) => contains(e, 'took 7ms')],
        [
          'two words',
          'refused connection',
          (e) => contains(e, 'refused') && contains(e, 'connection'),
        ],
        ['a phrase as written', '"connection refused"', (e) => contains(e, 'connection refused')],
        ['a phrase in another order', '"refused connection"', () => false],
        ['common words', 'GET took', (e) => contains(e, 'GET') && contains(e, 'took')],
        ['a backslash, as written', 'C:\\logs\\app', (e) => contains(e, 'C:\\logs\\app')],
        ['a bracket is not text', '[', () => false],
        ['a number value is not text', '12345', () => false],
        ['a key is not text', 'nested', () => false],
        ['LIKE wildcards are literal', '100%', () => false],
      ];

      for (const [name, q, keep] of SEARCHES) {
        it(`q: ${name}`, async () => {
          expect(await listAll(`${T}&q=${enc(q)}`)).toEqual(expected(keep));
        });
      }

      it('q across topics finds the token in each', async () => {
        const ids = await listAll(`q=req-7f3a9c`);
        expect(ids).toEqual(expected((e) => contains(e, 'req-7f3a9c'), all));
      });

      it('q with source, time range, oldest first, and a small page', async () => {
        const since = at(100);
        const until = at(2000);
        const keep = (e: LogEvent) =>
          e.source === 'web-1' &&
          e.timestamp >= since &&
          e.timestamp < until &&
          contains(e, 'took') &&
          contains(e, '/api/v1/cart/1');
        const ids = await listAll(
          `${T}&source=web-1&since=${since}&until=${until}&q=${enc('took /api/v1/cart/1')}&order=asc`,
          7,
        );
        expect(ids).toEqual(expected(keep).reverse());
      });

      const FIELDS: [string, string, (e: LogEvent) => boolean][] = [
        ['a string', 'field.level=error', (e) => at2(e.payload, ['level']) === 'error'],
        [
          'a nested number',
          'field.http.status=500',
          (e) => at2(e.payload, ['http', 'status']) === 500,
        ],
        ['a quoted string is not the number', 'field.http.status=%22500%22', () => false],
        [
          'two fields',
          'field.level=warn&field.nested.deep.ip=10.0.1.1',
          (e) =>
            at2(e.payload, ['level']) === 'warn' &&
            at2(e.payload, ['nested', 'deep', 'ip']) === '10.0.1.1',
        ],
        ['an array is not its element', 'field.tags=tag-1', () => false],
        [
          'a string holding a tab, as a JSON escape',
          `field.cols=${enc('"col1\\tcol2"')}`,
          (e) => at2(e.payload, ['cols']) === 'col1\tcol2',
        ],
        [
          'with q',
          `field.http.status=500&q=${enc('cart/2')}`,
          (e) => at2(e.payload, ['http', 'status']) === 500 && contains(e, 'cart/2'),
        ],
      ];
      for (const [name, query, keep] of FIELDS) {
        it(`field filter: ${name}`, async () => {
          expect(await listAll(`${T}&${query}`)).toEqual(expected(keep));
        });
      }

      it('the histogram counts exactly the listed rows, every bucket present', async () => {
        const since = '2026-02-28T22:30:00Z';
        const until = '2026-03-01T08:00:00Z';
        for (const [query, keep] of [
          ['', () => true],
          [
            `&q=${enc('refused connection')}`,
            (e: LogEvent) => contains(e, 'refused') && contains(e, 'connection'),
          ],
          [
            '&field.level=error&source=web-2',
            (e: LogEvent) => e.source === 'web-2' && at2(e.payload, ['level']) === 'error',
          ],
        ] as const) {
          const reply = await request<{
            interval: string;
            buckets: { start: string; count: number }[];
          }>(`${svc.url}/events/histogram?${T}&interval=1h&since=${since}&until=${until}${query}`);
          expect(reply.status, JSON.stringify(reply.body)).toBe(200);
          expect(reply.body.interval).toBe('1h');
          // 22:00 (the bucket holding since) to 07:00: ten buckets, zeros included.
          const starts = Array.from({ length: 10 }, (_, h) =>
            new Date(Date.parse('2026-02-28T22:00:00Z') + h * 3_600_000).toISOString(),
          );
          const want = starts.map((start) => ({
            start,
            count: events.filter(
              (e) =>
                keep(e) &&
                Date.parse(e.timestamp) >= Date.parse(start) &&
                Date.parse(e.timestamp) < Date.parse(start) + 3_600_000,
            ).length,
          }));
          expect(reply.body.buckets).toEqual(want);
          const listed = await listAll(`${T}&since=${since}&until=${until}${query}`, 1000);
          expect(reply.body.buckets.reduce((n, b) => n + b.count, 0)).toBe(listed.length);
        }
      });

      it('the live stream applies the same filters', async () => {
        const stream = await openStream(
          `${svc.url}/events/stream?topic=${enc(topic)}&q=${enc('needle-live')}&field.level=error`,
        );
        try {
          const live = [
            { level: 'error', msg: 'a needle-live here' },
            { level: 'info', msg: 'a needle-live here' },
            { level: 'error', msg: 'nothing' },
            { level: 'error', nested: { m: 'NEEDLE-LIVE deep' } },
          ].map((payload, i) => ({
            topic,
            event_id: `live-${i}`,
            timestamp: at(i),
            source: 'web-0',
            payload,
          }));
          await publishAll(svc.url, live, { batch: 10, concurrency: 1 });
          await waitForDrain(svc.url, all.length + live.length);
          const got = await stream.waitFor(2, 5000);
          expect(got.map((e) => e.data.event_id)).toEqual(['live-0', 'live-3']);
        } finally {
          stream.close();
        }
      });

      // [name, path, the parameter the details name, the reason they give (when checked)]
      const BAD: [string, string, string, string?][] = [
        ['an empty q', `/events?${T}&q=`, 'q'],
        ['a q of blanks', `/events?${T}&q=${enc('   ')}`, 'q'],
        ['a q over 512 characters', `/events?${T}&q=${'a'.repeat(513)}`, 'q'],
        ['a field path with an empty key', `/events?${T}&field.a..b=1`, 'field.a..b'],
        ['a field without a path', `/events?${T}&field.=1`, 'field.'],
        ['a field given twice', `/events?${T}&field.level=a&field.level=b`, 'field.level'],
        ['an unknown interval', `/events/histogram?${T}&interval=2h`, 'interval'],
        [
          'more than 10,000 buckets',
          `/events/histogram?${T}&interval=1m&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z`,
          'interval',
        ],
        ['a histogram q over 512', `/events/histogram?${T}&q=${'b'.repeat(600)}`, 'q'],
        ['a histogram bad field', `/events/histogram?${T}&field.x.=1`, 'field.x.'],
        ['a stream with an empty q', `/events/stream?q=`, 'q'],
        // Control characters (a NUL, which PostgreSQL cannot take, answered 500), named.
        ...(
          [
            ['/events', 'topic=a%00b', 'topic', cc('U+0000 at index 1')],
            ['/events', `${T}&source=%00`, 'source', cc('U+0000 at index 0')],
            ['/events', `${T}&q=err%00`, 'q', cc('U+0000 at index 3')],
            ['/events', `${T}&q=%1B%5B31m`, 'q', cc('U+001B at index 0')],
            ['/events', `${T}&q=a%C2%85`, 'q', cc('U+0085 at index 1')],
            ['/events', `${T}&field.msg=a%00`, 'field.msg', cc('U+0000 at index 1')],
            ['/events', `${T}&field.msg=x%0Ay`, 'field.msg', cc('U+000A at index 1')],
            [
              '/events',
              `${T}&field.msg=${enc('"a\\u0000"')}`,
              'field.msg',
              'must not contain the NUL character (U+0000 at index 1',
            ],
            ['/events', `${T}&field.a%00b=1`, 'field.a\u0000b', cc('U+0000 at index 7')],
            ['/events/histogram', 'topic=%00', 'topic', cc('U+0000 at index 0')],
            ['/events/histogram', `${T}&source=s%00`, 'source', cc('U+0000 at index 1')],
            ['/events/histogram', `${T}&q=%00`, 'q', cc('U+0000 at index 0')],
            ['/events/histogram', `${T}&field.level=%00`, 'field.level', cc('U+0000 at index 0')],
            ['/events/stream', `${T}&topic=a%00`, 'topic[1]', cc('U+0000 at index 1')],
            ['/events/stream', 'source=%00', 'source', cc('U+0000 at index 0')],
            ['/events/stream', 'q=a%00', 'q', cc('U+0000 at index 1')],
            ['/events/stream', 'field.level=%00', 'field.level', cc('U+0000 at index 0')],
            ['/conflicts', 'topic=a%00b', 'topic', cc('U+0000 at index 1')],
            ['/topics/a%00b/dedup', '', 'topic', cc('U+0000 at index 1')],
            ['/publish/receipts/1%00', '', 'message_id', cc('U+0000 at index 1')],
          ] as const
        ).map(([route, query, parameter, reason]): [string, string, string, string] => [
          `a control character in ${parameter} of ${route}${query === '' ? '' : `?${query.replace(T, 'T')}`}`,
          query === '' ? route : `${route}?${query}`,
          parameter,
          reason,
        ]),
      ];
      for (const [name, path, parameter, reason] of BAD) {
        it(`refuses ${name} with 422 naming ${parameter}, and loses nothing`, async () => {
          const reply = await request<{
            code: string;
            message: string;
            details: { field: string; reason: string }[];
          }>(`${svc.url}${path}`);
          expect(reply.status, JSON.stringify(reply.body)).toBe(422);
          expect(reply.body.code).toBe('AGG_ERR_INVALID_QUERY');
          expect(reply.body.details.map((d) => d.field).join(' ')).toContain(parameter);
          if (reason !== undefined) {
            expect(reply.body.details.map((d) => d.reason).join(' ')).toContain(reason);
            expect(reply.body.message).toContain(reason);
          }
          // The store is as it was: every event still listed.
          const count = await request<unknown[]>(
            `${svc.url}/events?${T}&limit=1000&since=${at(0)}`,
          );
          expect(count.body).toHaveLength(1000);
          expect(
            (await request<{ unique_processed: number }>(`${svc.url}/stats`)).body.unique_processed,
          ).toBeGreaterThanOrEqual(all.length);
        });
      }
    },
  );
}
