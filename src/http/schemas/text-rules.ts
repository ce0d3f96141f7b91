/**
 * Schema keywords for the text rules a regular expression cannot explain: each refusal names its
 * own reason (and the offending character), where a failed `pattern` could only say that
 * something somewhere was wrong.
 *
 * - `x-name` (topics, event ids, sources): not blank, where blank means nothing visible: only
 *   Unicode White_Space (so U+0085, U+00A0 and U+3000 are blank too) and default-ignorable code
 *   points (the joiners U+200C and U+200D, variation selectors, the Hangul fillers such as
 *   U+3164…), which render as nothing on their own; no control character (category Cc: C0, DEL and
 *   the C1 controls U+0080–U+009F such as U+0085 and U+009B); no invisible formatting character
 *   (category Cf: U+200B, U+FEFF, the bidirectional controls U+202A–U+202E and U+2066–U+2069,
 *   the soft hyphen U+00AD…) and no line or paragraph separator (U+2028, U+2029). A name is a
 *   key that people read, compare and type: two names that look the same must be the same name.
 *   Joiners U+200C and U+200D are the exception: Persian and Indic words and emoji sequences need
 *   them (between visible characters; a name of joiners alone is blank).
 * - `x-query-text` (the filters of a query: topic, source, `q`, `field.<path>` values, names in
 *   a path): no control character (category Cc), the same rule and words as for names. No name
 *   holds one, PostgreSQL cannot take U+0000 in a parameter at all, and one in a typed or pasted
 *   query is an accident better named than answered with nothing found (or a 500).
 * - `x-event-timestamp`: the event timestamp rules of src/timestamp.ts, with their reasons.
 */
import type { Ajv } from 'ajv';
import { timestampProblem } from '../../timestamp.js';

const CONTROL = /\p{Cc}/u;
const INVISIBLE = /(?![\u200c\u200d])[\p{Cf}\p{Zl}\p{Zp}]/u;
const NOT_WHITE = /[^\p{White_Space}]/u;
const VISIBLE = /[^\p{White_Space}\p{Default_Ignorable_Code_Point}]/u;

function codePoint(text: string, index: number): string {
  return `U+${(text.codePointAt(index) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Why `text` cannot be in a name or a query filter (a control character), or undefined. */
export function controlProblem(text: string): string | undefined {
  const control = CONTROL.exec(text);
  if (control === null) return undefined;
  return `must not contain control characters (${codePoint(text, control.index)} at index ${control.index})`;
}

/** Why `text` cannot be a topic, event id or source, or undefined when it can. */
export function nameProblem(text: string): string | undefined {
  // First: a name of tabs and spaces is better told it is blank than that it holds a tab, and
  // one of joiners (allowed inside a word) that it shows nothing.
  if (!VISIBLE.test(text)) {
    const invisible = NOT_WHITE.exec(text);
    return invisible === null
      ? 'must not be blank (only white space)'
      : `must not be blank (only white space and invisible characters, such as ${codePoint(text, invisible.index)} at index ${invisible.index})`;
  }
  const control = controlProblem(text);
  if (control !== undefined) return control;
  const invisible = INVISIBLE.exec(text);
  if (invisible !== null) {
    return `must not contain invisible formatting characters or line separators (${codePoint(text, invisible.index)} at index ${invisible.index})`;
  }
  return undefined;
}

interface KeywordError {
  keyword: string;
  message: string;
  params: Record<string, unknown>;
}

/**
 * A keyword that applies `problem` to strings. With `emptyIsMinLengths`, an empty string is left
 * to the schema's minLength, which already says "must not be empty".
 */
function stringRule(
  keyword: string,
  problem: (text: string) => string | undefined,
  emptyIsMinLengths: boolean,
) {
  const validate = (schema: boolean, data: unknown): boolean => {
    validate.errors = [] as KeywordError[];
    if (!schema || typeof data !== 'string' || (emptyIsMinLengths && data === '')) return true;
    const reason = problem(data);
    if (reason === undefined) return true;
    validate.errors = [{ keyword, message: reason, params: {} }];
    return false;
  };
  validate.errors = [] as KeywordError[];
  return {
    keyword,
    type: 'string' as const,
    schemaType: 'boolean' as const,
    errors: true,
    validate,
  };
}

/** Adds `x-name`, `x-query-text` and `x-event-timestamp` to an Ajv instance. */
export function addTextKeywords(ajv: Ajv): void {
  ajv.addKeyword(stringRule('x-name', nameProblem, true));
  ajv.addKeyword(stringRule('x-query-text', controlProblem, true));
  ajv.addKeyword(stringRule('x-event-timestamp', timestampProblem, false));
}
