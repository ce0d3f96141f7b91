/**
 * POST /v1/logs: OTLP/HTTP logs (OpenTelemetry Protocol specification 1.x, "OTLP/HTTP"), binary
 * protobuf or JSON. Records that map to valid events are queued as one message; the others are
 * counted in `partialSuccess.rejectedLogRecords` with the reasons in `errorMessage`. Errors answer
 * a google.rpc.Status in the request's encoding: 400 for a body that is not a request, 429 and
 * 503 with Retry-After when the service cannot take it now (exporters retry those).
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import { eventChecker } from '../../ingest/event-validation.js';
import { MESSAGE_ID_HEADER, enqueueEvents } from '../../ingest/delivery.js';
import {
  decodeOtlpJson,
  decodeOtlpProtobuf,
  encodeOtlpResponse,
  mapOtlpLogs,
} from '../../ingest/otlp-logs.js';
import { encodeRpcStatus } from '../../ingest/rpc-status.js';
import type { StorelessRouteContext } from '../app-context.js';
import { isJsonRequest, protocolError } from '../protocol-errors.js';

/** At most this many reasons are spelled out in `errorMessage`; the count covers all. */
const MAX_REASONS = 10;

export async function registerOtlpRoutes(
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
      // OTLP/HTTP: data that cannot be decoded or is invalid is a 400, never retried.
      const httpStatus = status === 422 ? 400 : status;
      const json = isJsonRequest(request);
      return reply
        .status(httpStatus)
        .header('content-type', json ? 'application/json' : 'application/x-protobuf')
        .send(encodeRpcStatus(httpStatus, `${mapped.code}: ${mapped.message}`, json));
    });

    scope.post(
      '/v1/logs',
      {
        config: { scope: 'publish', protocolErrors: true },
        schema: {
          summary: 'OTLP/HTTP logs export',
          description:
            'An OpenTelemetry ExportLogsServiceRequest, as `application/x-protobuf` or `application/json`. Answers an ExportLogsServiceResponse in the same encoding; refused records are counted in partialSuccess. Mapping: docs/shippers.md.',
          tags: ['shippers'],
          consumes: ['application/x-protobuf', 'application/json'],
          produces: ['application/x-protobuf', 'application/json'],
          response: {
            200: {
              description: 'ExportLogsServiceResponse',
              type: 'object',
              properties: {
                partialSuccess: {
                  type: 'object',
                  properties: {
                    rejectedLogRecords: { type: 'string' },
                    errorMessage: { type: 'string' },
                  },
                },
              },
            },
          },
        },
      },
      async (request, reply) => {
        const body = request.body as Buffer;
        const json = isJsonRequest(request);
        let decoded;
        if (json) {
          if (!isUtf8(body)) {
            throw new AggregatorError('AGG_ERR_BAD_JSON', 'The request body is not valid UTF-8');
          }
          decoded = decodeOtlpJson(body.toString('utf8'));
        } else {
          decoded = decodeOtlpProtobuf(body);
        }
        const accepted: string[] = [];
        const reasons: string[] = [];
        let rejected = 0;
        const check = eventChecker();
        mapOtlpLogs(decoded).forEach((record, index) => {
          const checked = record.ok ? check(record.event) : record;
          if (checked.ok) {
            accepted.push(checked.json);
          } else {
            rejected++;
            if (reasons.length < MAX_REASONS)
              reasons.push(`log record ${index}: ${checked.reason}`);
          }
        });
        if (accepted.length > 0) {
          // The protocol's answer has no room for it: the queue message ids, for the receipts.
          void reply.header(MESSAGE_ID_HEADER, (await enqueueEvents(ctx, accepted)).join(','));
        }
        const more = rejected > reasons.length ? `; and ${rejected - reasons.length} more` : '';
        const partial =
          rejected === 0 ? undefined : { rejected, errorMessage: `${reasons.join('; ')}${more}` };
        return reply
          .header('content-type', json ? 'application/json' : 'application/x-protobuf')
          .send(encodeOtlpResponse(partial, json));
      },
    );
  });
}
