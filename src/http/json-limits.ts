/**
 * Limits on valid JSON that PostgreSQL would still refuse, checked on the raw bytes of a body
 * that has already parsed. A refused body must be refused at the door: once queued it could only
 * fail in the worker. Two things parse in JavaScript but not in PostgreSQL's JSONB:
 *
 * - deep nesting: its parser recurses, and some 20,000 levels exhaust its stack;
 * - numbers beyond its `numeric` range (`1e200000`, `1e-20000`). Numbers are held to what a 64-bit
 *   float can represent, so every client can read back what it wrote, and a short literal such
 *   as `1e131071` cannot be stored as 131,072 digits.
 *
 * One pass over the bytes outside strings; strings are skipped with `indexOf`, so a typical body,
 * mostly strings, costs a few microseconds per kilobyte.
 */

/** Most levels of arrays and objects in a request body (the event itself is level 3). */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;

/** Index of the quote that closes the string whose content starts at `from`. */
function endOfString(bytes: Buffer, from: number): number {
  let at = bytes.indexOf(QUOTE, from);
  for (;;) {
    let backslashes = 0;
    while (bytes[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
    at = bytes.indexOf(QUOTE, at + 1);
  }
}

function isNumberByte(c: number): boolean {
  return (
    (c >= DIGIT_0 && c <= DIGIT_9) ||
    c === MINUS ||
    c === PLUS ||
    c === DOT ||
    c === LOWER_E ||
    c === UPPER_E
  );
}

/** Why a number literal cannot be stored, or undefined if it can. */
function numberProblem(literal: string): string | undefined {
  const value = Number(literal);
  if (!Number.isFinite(value)) return `the number ${abbreviate(literal)} is too large`;
  // A literal with a non-zero digit that reads as 0 lies below the smallest float.
  if (value === 0 && /[1-9]/.test(literal.split(/[eE]/)[0] ?? '')) {
    return `the number ${abbreviate(literal)} is too small to represent`;
  }
  return undefined;
}

function abbreviate(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 20)}…${text.slice(-12)}`;
}

/**
 * Returns why the (valid) JSON in `bytes` cannot be stored, or undefined when it can. Numbers
 * short enough to be ordinary (no exponent, at most 15 digits) are not parsed again.
 */
export function jsonLimitProblem(bytes: Buffer, maxDepth = MAX_JSON_DEPTH): string | undefined {
  let depth = 0;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const c = bytes[i] as number;
    if (c === QUOTE) {
      i = endOfString(bytes, i + 1);
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) {
        return `arrays and objects are nested more than ${maxDepth} levels deep`;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      const start = i;
      let unusual = false;
      while (i + 1 < length && isNumberByte(bytes[i + 1] as number)) {
        const next = bytes[++i] as number;
        if (next === LOWER_E || next === UPPER_E) unusual = true;
      }
      if (unusual || i - start >= 15) {
        const problem = numberProblem(bytes.toString('latin1', start, i + 1));
        if (problem !== undefined) return problem;
      }
    }
  }
  return undefined;
}
