/**
 * `field.<path>=<value>` parameters: events whose payload holds exactly this JSON value at this
 * path (`field.http.status=500` matches `{"http": {"status": 500}}`). The value is read as JSON
 * when it is a JSON number, `true`, `false`, `null` or a quoted string (`field.code="500"` is the
 * string), and as a string otherwise (`field.level=error`).
 */
import { AggregatorError } from '../errors.js';
import { controlProblem } from '../http/schemas/text-rules.js';

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
 * (`field.`, `field.a..b`), a path deeper than 16 keys or with a key over 255 characters, a
 * control character in the path or the value (text-rules.ts, naming it; the query schema says
 * the same of the value first), a quoted value that holds U+0000 once read as JSON (no payload
 * holds one, and PostgreSQL's jsonb cannot), or a parameter given more than once.
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
          : (controlProblem(name) ??
            (typeof raw !== 'string' ? 'give each field once' : controlProblem(raw)));
    if (problem !== undefined) throw invalid(name, problem);
    const value = scalarOf(raw as string);
    const nul = nulProblem(value);
    if (nul !== undefined) throw invalid(name, nul);
    filters.push({ path, value });
  }
  return filters;
}

function invalid(name: string, reason: string): AggregatorError {
  return new AggregatorError('AGG_ERR_INVALID_QUERY', `${name}: ${reason}`, [
    { field: name, reason },
  ]);
}

/** The value a parameter's text stands for: JSON when it is a JSON scalar, else the text. */
function scalarOf(text: string): JsonScalar {
  return JSON_SCALAR.test(text) ? (JSON.parse(text) as JsonScalar) : text;
}

/** Why a JSON-quoted value cannot be looked for: it holds U+0000 (`"a\u0000b"`). */
function nulProblem(value: JsonScalar): string | undefined {
  const at = typeof value === 'string' ? value.indexOf('\u0000') : -1;
  return at < 0
    ? undefined
    : `must not contain the NUL character (U+0000 at index ${at} of the JSON string), which no payload holds`;
}

/** The smallest JSON object holding `filter.value` at `filter.path` (for a containment test). */
export function containmentOf(filter: FieldFilter): Record<string, unknown> {
  let value: unknown = filter.value;
  for (const key of [...filter.path].reverse()) value = { [key]: value };
  return value as Record<string, unknown>;
}
