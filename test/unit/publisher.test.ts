/**
 * The publishing client behind the CLI, the benchmark and the tests' publishAll: which answers it
 * sends a batch again after, which it records as refused, and what it reports, against a local
 * HTTP server that answers as the test tells it.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { publishEvents, PublishError } from '../../src/cli/publisher.js';
import type { LogEvent } from '../../src/log-event.js';

interface Seen {
  readonly url: string;
  readonly ids: string[];
}

/** What the server does with an attempt: answer this status, or 0 to drop the connection. */
type Answer = (attempt: number, seen: Seen) => number;

let server: Server | undefined;

async function stop(): Promise<void> {
  const running = server;
  server = undefined;
  if (running !== undefined) await new Promise((resolve) => running.close(resolve));
}

afterEach(stop);

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

/** Starts a server answering by `answer` per batch (attempts counted per first event id). */
async function serve(answer: Answer): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const attempts = new Map<string, number>();
  server = createServer((req, res) => {
    void body(req).then((text) => {
      const { events } = JSON.parse(text) as { events: LogEvent[] };
      const entry = { url: req.url ?? '', ids: events.map((e) => e.event_id) };
      seen.push(entry);
      const key = entry.ids[0] ?? '';
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const status = answer(attempt, entry);
      if (status === 0) {
        req.socket.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status }));
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen };
}

const events = (n: number): LogEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    topic: 't',
    event_id: String(i),
    timestamp: '2024-05-01T12:00:00Z',
    source: 'test',
    payload: {},
  }));

describe('publishEvents', () => {
  it('sends a batch again after a 503 and after a lost connection, until it is accepted', async () => {
    // Batch 0: 503 then 200; batch 1: connection dropped then 200; batch 2: 200 at once.
    const { url, seen } = await serve((attempt, { ids }) => {
      if (attempt > 1) return 200;
      return ids[0] === '0' ? 503 : ids[0] === '2' ? 0 : 200;
    });
    const report = await publishEvents(events(6), { url, batch: 2, concurrency: 2 });
    expect(report).toMatchObject({
      sentEvents: 6,
      acceptedRequests: 3,
      totalEvents: 6,
      requests: 3,
      retries: 2,
      failures: [],
    });
    expect(report.latenciesMs).toHaveLength(3);
    expect(seen).toHaveLength(5);
    expect(seen.every((s) => s.url === '/publish')).toBe(true);
  });

  it('records a 4xx as refused and does not send it again', async () => {
    const { url, seen } = await serve((_attempt, { ids }) => (ids[0] === '2' ? 422 : 200));
    const report = await publishEvents(events(4), { url, batch: 2, concurrency: 1 });
    expect(report).toMatchObject({ sentEvents: 2, acceptedRequests: 1, retries: 0 });
    expect(report.failures).toEqual([{ status: 422, body: '{"status":422}' }]);
    expect(seen).toHaveLength(2);
  });

  it('sends a batch again after a 500 by default, and refuses it when retryStatuses leaves 500 out', async () => {
    const answer: Answer = (attempt) => (attempt === 1 ? 500 : 200);
    const first = await serve(answer);
    const riding = await publishEvents(events(2), { url: first.url, batch: 2, concurrency: 1 });
    expect(riding).toMatchObject({ acceptedRequests: 1, retries: 1, failures: [] });
    await stop();

    const second = await serve(answer);
    const strict = await publishEvents(events(2), {
      url: second.url,
      batch: 2,
      concurrency: 1,
      retryStatuses: new Set([503]),
    });
    expect(strict).toMatchObject({ acceptedRequests: 0, retries: 0 });
    expect(strict.failures).toEqual([{ status: 500, body: '{"status":500}' }]);
    expect(second.seen).toHaveLength(1);
  });

  it('publishes atomically on request and reports progress per accepted batch', async () => {
    const { url, seen } = await serve(() => 200);
    const accepted: number[] = [];
    await publishEvents(events(5), {
      url,
      batch: 2,
      concurrency: 1,
      atomic: true,
      onProgress: (p) => accepted.push(p.acceptedRequests),
    });
    expect(seen.map((s) => s.url)).toEqual(Array(3).fill('/publish?atomic=true'));
    expect(seen.map((s) => s.ids.length)).toEqual([2, 2, 1]);
    expect(accepted).toEqual([1, 2, 3]);
  });

  it('gives up on a batch after maxAttempts', async () => {
    const { url, seen } = await serve(() => 503);
    await expect(
      publishEvents(events(1), { url, batch: 1, concurrency: 1, maxAttempts: 3 }),
    ).rejects.toThrow(PublishError);
    expect(seen).toHaveLength(3);
  });
});
