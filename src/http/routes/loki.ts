/**
 * POST /loki/api/v1/push: the Grafana Loki push API, JSON or snappy-compressed protobuf. 204 when
 * every entry was queued. Entries that fail validation are refused alone: the others are queued
 * and the answer is a 400 whose plain-text body lists what was refused, as Loki's distributor
 * does for invalid entries (it keeps the valid ones and reports the rest with a 400, which
 * clients do not retry). A body that cannot be decoded is a 400 with nothing queued; 429 and 503
 * carry Retry-After. Error bodies are plain text, as Loki's are.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import { MESSAGE_ID_HEADER, enqueueEvents } from '../../ingest/delivery.js';
import { eventChecker } from '../../ingest/event-validation.js';
import { decodeLokiJson, decodeLokiProtobuf } from '../../ingest/loki-push.js';
import type { StorelessRouteContext } from '../app-context.js';
import { isJsonRequest, protocolError } from '../protocol-errors.js';

/** At most this many refused entries are spelled out; the count covers all. */
const MAX_REASONS = 10;

export async function registerLokiRoutes(
  app: FastifyInstance,
  ctx: StorelessRouteContext,
): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      ['application/x-protobuf', 'application/json'],
      { parseAs: 'buffer' },
      (_request, body, done) => done(null, body),
    );
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      const { error: mapped, status } = protocolError(error, request, reply);
      const httpStatus = status === 422 ? 400 : status;
      return reply
        .status(httpStatus)
        .header('content-type', 'text/plain; charset=utf-8')
        .send(`${mapped.code}: ${mapped.message}\n`);
    });

    scope.post(
      '/loki/api/v1/push',
      {
        config: { scope: 'publish', protocolErrors: true },
        schema: {
          summary: 'Grafana Loki push API',
          description:
            'A Loki PushRequest as `application/json` or snappy-compressed `application/x-protobuf`. 204 when all entries were queued; 400 (plain text) listing refused entries while the others are queued. Mapping: docs/shippers.md.',
          tags: ['shippers'],
          consumes: ['application/json', 'application/x-protobuf'],
          response: {
            204: { description: 'Every entry was queued', type: 'null' },
            400: { description: 'What was refused, as plain text', type: 'string' },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as Buffer;
        let entries;
        if (isJsonRequest(request)) {
          if (!isUtf8(body)) {
            throw new AggregatorError('AGG_ERR_BAD_JSON', 'The request body is not valid UTF-8');
          }
          entries = decodeLokiJson(body.toString('utf8'));
        } else {
          entries = decodeLokiProtobuf(body, ctx.config.maxBodyBytes);
        }
        const accepted: string[] = [];
        const reasons: string[] = [];
        let refused = 0;
        const check = eventChecker();
        entries.forEach((entry, index) => {
          const checked = entry.ok ? check(entry.event) : entry;
          if (checked.ok) {
            accepted.push(checked.json);
          } else {
            refused++;
            if (reasons.length < MAX_REASONS) reasons.push(`entry ${index}: ${checked.reason}`);
          }
        });
        if (accepted.length > 0) {
          // The protocol's answer has no room for it: the queue message ids, for the receipts.
          void reply.header(MESSAGE_ID_HEADER, (await enqueueEvents(ctx, accepted)).join(','));
        }
        if (refused === 0) return reply.status(204).send();
        const more = refused > reasons.length ? `; and ${refused - reasons.length} more` : '';
        return reply
          .status(400)
          .header('content-type', 'text/plain; charset=utf-8')
          .send(
            `${refused} of ${entries.length} entries refused (the other ${accepted.length} were accepted): ${reasons.join('; ')}${more}\n`,
          );
      },
    );
  });
}
