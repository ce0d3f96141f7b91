/**
 * The Elasticsearch bulk API body (Elasticsearch 8 "Bulk API": newline-delimited JSON, an action
 * line then, for `create`, `index` and `update`, a source line), decoded into one item per action.
 * `create` and `index` become events:
 *
 * - topic: the action's `_index`, else the index of the path (`/es/{index}/_bulk`);
 * - event_id: the action's `_id`, else derived from the index and the document's content;
 * - timestamp: the document's `@timestamp` (ISO 8601, a date, or epoch milliseconds, as the
 *   default `strict_date_optional_time||epoch_millis` date format reads it);
 * - source: the document's `host.name`, `agent.name` or `service.name` (dotted or nested), else
 *   the index;
 * - payload: the document, as the exact JSON text that arrived (numbers keep every digit).
 *
 * `update` and `delete` are refused item by item: the store is append-only. A malformed action
 * line makes the whole request a 400, as it does in Elasticsearch; a malformed document refuses
 * its item only.
 */
import { AggregatorError } from '../errors.js';
import { normalizeTimestamp } from '../timestamp.js';
import { contentId, type CanonicalValue } from './content-id.js';
import type { MappedEvent } from './event-validation.js';

export type BulkOperation = 'create' | 'index' | 'update' | 'delete';

/** An Elasticsearch error object (`type` names the exception class clients switch on). */
export interface BulkItemError {
  readonly status: number;
  readonly type: string;
  readonly reason: string;
}

/** One action of the bulk body, mapped to an event or refused. */
export interface BulkItem {
  readonly operation: BulkOperation;
  readonly index: string;
  readonly id: string | undefined;
  readonly event?: MappedEvent;
  readonly error?: BulkItemError;
}

const OPERATIONS: readonly string[] = ['create', 'index', 'update', 'delete'];

function malformed(line: number, why: string): AggregatorError {
  return new AggregatorError(
    'AGG_ERR_BAD_JSON',
    `Malformed action/metadata line [${line}]: ${why}`,
    [{ field: `line ${line}`, reason: why }],
  );
}

/** A field of an ECS document, dotted (`"host.name"`) or nested (`{"host": {"name"}}`). */
function ecsField(document: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(document, path)) return document[path];
  const [head, ...rest] = path.split('.');
  if (head === undefined || rest.length === 0 || !Object.hasOwn(document, head)) return undefined;
  const inner = document[head];
  return typeof inner === 'object' && inner !== null && !Array.isArray(inner)
    ? ecsField(inner as Record<string, unknown>, rest.join('.'))
    : undefined;
}

/** `@timestamp` as an event timestamp, or undefined if it is missing or not a date. */
export function esTimestamp(value: unknown): string | undefined {
  let millis: number | undefined;
  if (typeof value === 'number') millis = value;
  else if (typeof value === 'string' && /^-?\d{1,16}$/.test(value)) millis = Number(value);
  else if (typeof value === 'string') {
    return normalizeTimestamp(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  }
  if (millis === undefined || !Number.isInteger(millis)) return undefined;
  const date = new Date(millis);
  return Number.isNaN(date.getTime()) ? undefined : normalizeTimestamp(date.toISOString());
}

function refuse(
  operation: BulkOperation,
  index: string,
  id: string | undefined,
  type: string,
  reason: string,
): BulkItem {
  return { operation, index, id, error: { status: 400, type, reason } };
}

function mapDocument(
  operation: BulkOperation,
  index: string,
  id: string | undefined,
  text: string,
): BulkItem {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return refuse(operation, index, id, 'document_parsing_exception', (error as Error).message);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    return refuse(
      operation,
      index,
      id,
      'document_parsing_exception',
      'the document must be a JSON object',
    );
  }
  const fields = document as Record<string, unknown>;
  const timestamp = esTimestamp(fields['@timestamp']);
  if (timestamp === undefined) {
    return refuse(
      operation,
      index,
      id,
      'document_parsing_exception',
      fields['@timestamp'] === undefined
        ? 'the document has no @timestamp; every event needs one'
        : `@timestamp ${JSON.stringify(fields['@timestamp'])} is not an ISO 8601 date and time or epoch milliseconds`,
    );
  }
  let source: string = index;
  for (const path of ['host.name', 'agent.name', 'service.name']) {
    const value = ecsField(fields, path);
    if (typeof value === 'string' && value !== '') {
      source = value;
      break;
    }
  }
  const eventId = id ?? contentId('es', { index, document: fields as CanonicalValue });
  return {
    operation,
    index,
    id: eventId,
    event: { topic: index, event_id: eventId, timestamp, source, payloadJson: text },
  };
}

/**
 * Decodes a bulk body into its items in order. `pathIndex` is the index named by the URL, if any.
 * Throws AGG_ERR_BAD_JSON (400) for a malformed action line or a missing source line, like
 * Elasticsearch, which refuses the whole request then.
 */
export function decodeBulk(text: string, pathIndex: string | undefined): BulkItem[] {
  const lines = text.split('\n');
  const items: BulkItem[] = [];
  for (let i = 0; i < lines.length; i++) {
    const actionText = (lines[i] ?? '').trim();
    if (actionText === '') continue;
    const lineNumber = i + 1;
    let action: unknown;
    try {
      action = JSON.parse(actionText);
    } catch (error) {
      throw malformed(lineNumber, (error as Error).message);
    }
    if (typeof action !== 'object' || action === null || Array.isArray(action)) {
      throw malformed(lineNumber, 'expected an object such as {"create": {"_index": "logs"}}');
    }
    const keys = Object.keys(action);
    const operation = keys[0];
    if (keys.length !== 1 || operation === undefined || !OPERATIONS.includes(operation)) {
      throw malformed(
        lineNumber,
        `expected one field [create], [delete], [index] or [update] but found [${keys.join('], [')}]`,
      );
    }
    const meta = (action as Record<string, unknown>)[operation];
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
      throw malformed(lineNumber, `[${operation}] must hold an object`);
    }
    const op = operation as BulkOperation;
    const { _index: rawIndex, _id: rawId } = meta as { _index?: unknown; _id?: unknown };
    let documentText: string | undefined;
    if (op !== 'delete') {
      documentText = lines[++i]?.trim();
      if (documentText === undefined || documentText === '') {
        throw malformed(lineNumber, `[${op}] must be followed by a document line`);
      }
    }
    const index = typeof rawIndex === 'string' ? rawIndex : (pathIndex ?? '');
    const id = typeof rawId === 'string' ? rawId : undefined;
    if (index === '') {
      items.push(refuse(op, index, id, 'action_request_validation_exception', 'index is missing'));
    } else if (rawId !== undefined && typeof rawId !== 'string') {
      items.push(refuse(op, index, id, 'illegal_argument_exception', '_id must be a string'));
    } else if (op === 'update' || op === 'delete') {
      items.push(
        refuse(
          op,
          index,
          id,
          'illegal_argument_exception',
          `[${op}] is not supported: the log store is append-only; use [create] or [index]`,
        ),
      );
    } else {
      items.push(mapDocument(op, index, id, documentText ?? ''));
    }
  }
  return items;
}
