/**
 * GET /events/stream: newly stored events as Server-Sent Events, each once, with `id:` set so a
 * client that reconnects with Last-Event-ID (EventSource does it by itself) resumes right after
 * the last event it saw. A subscriber that reads too slowly is not allowed to grow this process's
 * memory: past MAX_BUFFERED_BYTES waiting behind its full socket, its stream is cut, and it
 * resumes by reconnecting.
 */
import type { FastifyInstance } from 'fastify';
import { EventFeed, type FeedEvent } from '../../live/event-feed.js';
import { matchesFields, matchesTerms } from '../../search/event-match.js';
import type { RouteContext } from '../app-context.js';
import {
  contentFilterPatternProperties,
  contentFilterProperties,
  contentFilters,
} from '../event-filter-params.js';
import type { EventReader } from '../../store/store.js';
import { nameFilter } from '../schemas/event-schemas.js';

/** Bytes waiting for one subscriber's full socket beyond which it is cut off. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;
/** What EventSource waits before reconnecting. */
const RETRY_MS = 1000;

interface StreamQuery {
  topic?: string[];
  source?: string;
  q?: string;
  last_event_id?: number;
}

/**
 * The events a subscriber with these source and content filters wants (docs/search.md: the same
 * rules as GET /events), or undefined for all. Only filtered subscribers read the JSON back.
 */
function contentFilter(
  source: string | undefined,
  query: Record<string, unknown>,
): ((events: readonly FeedEvent[]) => FeedEvent[]) | undefined {
  const { terms, fields } = contentFilters(query);
  if (source === undefined && terms === undefined && fields === undefined) return undefined;
  return (events) =>
    events.filter((e) => {
      const stored = JSON.parse(e.json) as { source: string; payload: unknown };
      return (
        (source === undefined || stored.source === source) &&
        matchesTerms(stored.source, stored.payload, terms ?? []) &&
        matchesFields(stored.payload, fields ?? [])
      );
    });
}

function frames(events: readonly FeedEvent[]): string {
  let out = '';
  for (const e of events) out += `id: ${e.id}\ndata: ${e.json}\n\n`;
  return out;
}

export function registerStreamRoutes(app: FastifyInstance, ctx: RouteContext<EventReader>): void {
  const feed = new EventFeed(ctx.store, app.log);
  // Streams never end by themselves: end them before the server waits for open requests.
  app.addHook('preClose', async () => feed.close());

  app.get<{ Querystring: StreamQuery; Headers: { 'last-event-id'?: string } }>(
    '/events/stream',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Live tail of newly stored events (Server-Sent Events)',
        description:
          'Each event stored from now on, once, as `id: <id>` and `data: <StoredEvent JSON>`, filtered like GET /events by topic, source, `q` and `field.<path>`. Reconnect with the Last-Event-ID header (or last_event_id) to resume right after that event. A client reading too slowly is disconnected and resumes by reconnecting.',
        tags: ['events'],
        querystring: {
          type: 'object',
          properties: {
            topic: {
              type: 'array',
              items: nameFilter('A topic.'),
              maxItems: 100,
              description: 'Only these topics (repeat the parameter for several).',
            },
            source: nameFilter('Only this source.'),
            ...contentFilterProperties,
            last_event_id: {
              type: 'integer',
              minimum: 0,
              description: 'Resume after this event (for clients that cannot set Last-Event-ID).',
            },
          },
          patternProperties: contentFilterPatternProperties,
        },
        headers: {
          type: 'object',
          properties: { 'last-event-id': { type: 'string', pattern: '^\\d{1,15}$' } },
        },
        produces: ['text/event-stream'],
        response: { 200: { type: 'string' } },
      },
    },
    async (request, reply) => {
      const header = request.headers['last-event-id'];
      const lastEventId = header !== undefined ? Number(header) : request.query.last_event_id;
      // Before any answer: a bad q or field.* is a 422 like on GET /events.
      const wanted = contentFilter(
        request.query.source,
        request.query as unknown as Record<string, unknown>,
      );
      // Listening before the answer starts: a client that publishes once it has the headers
      // misses nothing. (If the database cannot be reached, this is an ordinary 503.)
      await feed.listen();
      const res = reply.raw;
      reply.hijack();
      // A client that left during that wait has already closed: nothing below would end it.
      if (request.raw.destroyed || res.socket === null || res.socket.destroyed) {
        res.destroy();
        return;
      }
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: ${RETRY_MS}\n\n`);
      let ended = false;
      let unsubscribe: (() => void) | undefined;
      ctx.metrics.liveSubscribers.inc();
      const end = (abort = false): void => {
        if (ended) return;
        ended = true;
        ctx.metrics.liveSubscribers.dec();
        clearInterval(heartbeat);
        unsubscribe?.();
        // Cutting off a slow reader drops what it has not read: ending would keep it buffered.
        if (abort) res.destroy();
        else res.end();
      };
      // While the socket is full, frames wait here; a burst (a resume replaying thousands of
      // events) drains, but a reader that lets this grow past the limit is too slow.
      const waiting: string[] = [];
      let waitingBytes = 0;
      const write = (text: string): void => {
        if (ended) return;
        if (!res.writableNeedDrain && waiting.length === 0) {
          res.write(text);
          return;
        }
        waiting.push(text);
        waitingBytes += text.length;
        if (waitingBytes > MAX_BUFFERED_BYTES) {
          request.log.info({ reqId: request.id }, 'live stream subscriber too slow; disconnected');
          end(true);
        }
      };
      res.on('drain', () => {
        while (!ended && waiting.length > 0 && !res.writableNeedDrain) {
          const text = waiting.shift() as string;
          waitingBytes -= text.length;
          res.write(text);
        }
      });
      const heartbeat = setInterval(() => write(': keep-alive\n\n'), HEARTBEAT_MS);
      request.raw.once('close', () => end());
      const topics = request.query.topic;
      try {
        unsubscribe = await feed.subscribe(
          {
            topics: topics === undefined ? undefined : new Set(topics),
            deliver: (events) => {
              const chosen = wanted === undefined ? events : wanted(events);
              if (chosen.length > 0) write(frames(chosen));
            },
            close: () => end(),
            isClosed: () => ended,
          },
          lastEventId,
        );
      } catch (error) {
        request.log.warn({ err: error }, 'live stream could not start');
        end();
        return;
      }
      if (ended) unsubscribe();
      // Only now: a client that waits for this line misses nothing stored after it.
      else write(': connected\n\n');
    },
  );
}
