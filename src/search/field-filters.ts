/**
 * `field.<path>=<value>` parameters: events whose payload holds exactly this JSON value at this
 * path (`field.http.status=500` matches `{"http": {"status": 500}}`). The value is read as JSON
 * when it is a JSON number, `true`, `false`, `null` or a quoted string (`field.code="500"` is the
 * string), and as a string otherwise (`field.level=error`).
 */
import { AggregatorError } from '../errors.js';

export const FIELD_PREFIX = 'field.';

/** Deepest path accepted, in keys. */
const MAX_DEPTH = 16;
const MAX_KEY_LENGTH = 255;
/** A JSON scalar as a query value may spell it: number, literal or quoted string. */
const JSON_SCALAR =
  /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|"(?:[^"\\]|\\.)*")$/;

export type JsonScalar = string | number | boolean | null;

export interface FieldFilter {
  /** Keys from the payload's root, e.g. ['http', 'status']. */
  readonly path: readonly string[];
  readonly value: JsonScalar;
}

/**
 * The field filters among the query parameters (other parameters are ignored), in order.
 * Throws AGG_ERR_INVALID_QUERY, naming the parameter, for an empty key in the path
 * (`field.`, `field.a..b`), a path deeper than 16 keys or with a key over 255 characters or with
 * control characters, or a parameter given more than once.
 */
export function parseFieldFilters(query: Record<string, unknown>): FieldFilter[] {
  const filters: FieldFilter[] = [];
  for (const [name, raw] of Object.entries(query)) {
    if (!name.startsWith(FIELD_PREFIX)) continue;
    const path = name.slice(FIELD_PREFIX.length).split('.');
    const problem = path.some((key) => key === '')
      ? 'a key of the path is empty'
      : path.length > MAX_DEPTH
        ? `the path is deeper than ${MAX_DEPTH} keys`
        : path.some((key) => key.length > MAX_KEY_LENGTH)
          ? `a key is longer than ${MAX_KEY_LENGTH} characters`
          : // eslint-disable-next-line no-control-regex
            path.some((key) => /[\u0000-\u001f\u007f]/.test(key))
            ? 'a key holds control characters'
            : typeof raw !== 'string'
              ? 'give each field once'
              : undefined;
    if (problem !== undefined) {
      throw new AggregatorError('AGG_ERR_INVALID_QUERY', `${name}: ${problem}`, [
        { field: name, reason: problem },
      ]);
    }
    const text = raw as string;
    filters.push({ path, value: JSON_SCALAR.test(text) ? (JSON.parse(text) as JsonScalar) : text });
  }
  return filters;
}

/** The smallest JSON object holding `filter.value` at `filter.path` (for a containment test). */
export function containmentOf(filter: FieldFilter): Record<string, unknown> {
  let value: unknown = filter.value;
  for (const key of [...filter.path].reverse()) value = { [key]: value };
  return value as Record<string, unknown>;
}
