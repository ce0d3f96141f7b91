/**
 * Elasticsearch bulk ingestion under /es, enough of the Elasticsearch 8 REST API for shippers and
 * the official clients: `GET /es/` (cluster information; every answer carries
 * `X-Elastic-Product: Elasticsearch`, which official clients check) and `POST /es/_bulk`,
 * `POST /es/{index}/_bulk`. Documents are stored before the answer (the atomic path) so each item
 * reports what became of it: 201 `created`, 200 `noop` for a duplicate (a 409 would make common
 * shippers retry forever), 409 for a conflicting duplicate under DUPLICATE_POLICY=reject-conflicts,
 * 400 for an item refused by validation and for `update`/`delete`.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance } from 'fastify';
import { AggregatorError } from '../../errors.js';
import { applyEvents } from '../../ingest/delivery.js';
import { decodeBulk, type BulkItem } from '../../ingest/es-bulk.js';
import { eventChecker } from '../../ingest/event-validation.js';
import type { EventOutcome } from '../../store/store.js';
import type { RouteContext } from '../app-context.js';
import type { EventApplier } from '../../store/store.js';
import { protocolError } from '../protocol-errors.js';

/** The Elasticsearch version this API answers as; clients of major version 8 accept it. */
export const ES_COMPAT_VERSION = '8.17.0';

const SHARDS = { total: 1, successful: 1, failed: 0 } as const;

/** Exception type names Elasticsearch uses for these statuses. */
function exceptionType(status: number, code: string): string {
  if (code === 'AGG_ERR_BAD_JSON') return 'parse_exception';
  if (status === 401) return 'security_exception';
  if (status === 403) return 'security_exception';
  if (status === 413) return 'content_too_long_exception';
  if (status === 429 || status === 503) return 'es_rejected_execution_exception';
  if (status === 404) return 'resource_not_found_exception';
  if (status >= 500) return 'exception';
  return 'illegal_argument_exception';
}

function itemAnswer(item: BulkItem, outcome: EventOutcome | undefined, refusal?: string) {
  const head = { _index: item.index, _id: item.id ?? null };
  let body: Record<string, unknown>;
  if (item.error !== undefined || refusal !== undefined) {
    body = {
      ...head,
      status: item.error?.status ?? 400,
      error: {
        type: item.error?.type ?? 'document_parsing_exception',
        reason: item.error?.reason ?? refusal,
        index: item.index,
      },
    };
  } else if (outcome?.outcome === 'rejected') {
    body = {
      ...head,
      status: 409,
      error: {
        type: 'version_conflict_engine_exception',
        reason: `[${item.id}]: version conflict, document already exists with a different content (DUPLICATE_POLICY=reject-conflicts)`,
        index: item.index,
      },
    };
  } else {
    const created = outcome?.outcome === 'stored';
    body = {
      ...head,
      _version: 1,
      result: created ? 'created' : 'noop',
      _shards: SHARDS,
      _seq_no: 0,
      _primary_term: 1,
      status: created ? 201 : 200,
    };
  }
  return { [item.operation]: body };
}

export async function registerEsBulkRoutes(
  app: FastifyInstance,
  ctx: RouteContext<EventApplier>,
): Promise<void> {
  await app.register(
    async (scope) => {
      scope.removeAllContentTypeParsers();
      const keepBytes = (_request: unknown, body: Buffer, done: (e: null, b: Buffer) => void) =>
        done(null, body);
      scope.addContentTypeParser(
        ['application/x-ndjson', 'application/json'],
        { parseAs: 'buffer' },
        keepBytes,
      );
      // The official clients' compatibility types, e.g. `…+x-ndjson; compatible-with=8`.
      scope.addContentTypeParser(
        /^application\/vnd\.elasticsearch\+(?:x-ndjson|json)/,
        { parseAs: 'buffer' },
        keepBytes,
      );
      scope.addHook('onSend', async (_request, reply) => {
        void reply.header('x-elastic-product', 'Elasticsearch');
      });
      scope.setErrorHandler((error: FastifyError, request, reply) => {
        const { error: mapped, status } = protocolError(error, request, reply);
        const type = exceptionType(status, mapped.code);
        const reason = `${mapped.code}: ${mapped.message}`;
        return reply.status(status).send({
          error: { root_cause: [{ type, reason }], type, reason },
          status,
        });
      });

      const clusterInfo = {
        name: ctx.config.instanceId,
        cluster_name: 'log-aggregator',
        cluster_uuid: '_na_',
        version: {
          number: ES_COMPAT_VERSION,
          build_flavor: 'default',
          build_type: 'log-aggregator',
          build_hash: 'log-aggregator',
          build_date: '2024-01-01T00:00:00.000Z',
          build_snapshot: false,
          lucene_version: '9.12.0',
          minimum_wire_compatibility_version: '7.17.0',
          minimum_index_compatibility_version: '7.0.0',
        },
        tagline: 'You Know, for Search',
      };
      scope.get(
        '/',
        {
          // Shippers send their key on every request; without keys configured it is open.
          config: { scope: 'publish', protocolErrors: true },
          schema: {
            summary: 'Elasticsearch cluster information (for shippers)',
            description: `Answers as Elasticsearch ${ES_COMPAT_VERSION} so that clients and shippers accept this as their output. Only the bulk API is served.`,
            tags: ['shippers'],
          },
        },
        async () => clusterInfo,
      );

      // Beats and Logstash read the licence before they write; a basic one is what they accept.
      const license = {
        license: {
          status: 'active',
          uid: '00000000-0000-0000-0000-000000000000',
          type: 'basic',
          issue_date: '2024-01-01T00:00:00.000Z',
          issue_date_in_millis: 1704067200000,
          max_nodes: 1000,
          max_resource_units: null,
          issued_to: 'log-aggregator',
          issuer: 'elasticsearch',
          start_date_in_millis: -1,
        },
      };
      scope.get(
        '/_license',
        {
          // Shippers send their key on every request; without keys configured it is open.
          config: { scope: 'publish', protocolErrors: true },
          schema: {
            summary: 'Elasticsearch licence information (for shippers)',
            description: 'A basic licence, which Beats and Logstash check before writing.',
            tags: ['shippers'],
          },
        },
        async () => license,
      );

      const bulkSchema = {
        summary: 'Elasticsearch bulk API',
        description:
          'NDJSON action and document lines. `create` and `index` store the document as an event (stored before the answer); `update` and `delete` are refused per item. Mapping and answers: docs/shippers.md.',
        tags: ['shippers'],
        consumes: ['application/x-ndjson', 'application/vnd.elasticsearch+x-ndjson'],
        response: {
          200: {
            description: 'took (ms), errors (any item failed), items: one answer per action',
            type: 'object',
            properties: {
              took: { type: 'integer' },
              errors: { type: 'boolean' },
              items: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
        },
      };
      const bulk = async (body: unknown, pathIndex: string | undefined) => {
        const started = performance.now();
        if (!Buffer.isBuffer(body) || body.length === 0) {
          throw new AggregatorError('AGG_ERR_BAD_JSON', 'request body is required');
        }
        if (!isUtf8(body)) {
          throw new AggregatorError('AGG_ERR_BAD_JSON', 'The request body is not valid UTF-8');
        }
        const items = decodeBulk(body.toString('utf8'), pathIndex);
        const refusals = new Map<number, string>();
        const jsons: string[] = [];
        const positions: number[] = [];
        const check = eventChecker();
        items.forEach((item, i) => {
          if (item.event === undefined) return;
          const checked = check(item.event);
          if (checked.ok) {
            jsons.push(checked.json);
            positions.push(i);
          } else {
            refusals.set(i, checked.reason);
          }
        });
        const outcomes = new Map<number, EventOutcome>();
        if (jsons.length > 0) {
          (await applyEvents(ctx, jsons)).forEach((o, k) => {
            outcomes.set(positions[k] ?? -1, o);
          });
        }
        const answers = items.map((item, i) => itemAnswer(item, outcomes.get(i), refusals.get(i)));
        return {
          took: Math.round(performance.now() - started),
          errors: answers.some((a) => (Object.values(a)[0]?.status as number) >= 300),
          items: answers,
        };
      };
      scope.post(
        '/_bulk',
        { config: { scope: 'publish', protocolErrors: true }, schema: bulkSchema },
        async (request) => bulk(request.body, undefined),
      );
      scope.post<{ Params: { index: string } }>(
        '/:index/_bulk',
        { config: { scope: 'publish', protocolErrors: true }, schema: bulkSchema },
        async (request) => bulk(request.body, request.params.index),
      );
    },
    { prefix: '/es' },
  );
}
