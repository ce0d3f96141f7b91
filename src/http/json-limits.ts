/**
 * Limits on valid JSON that PostgreSQL would still refuse, or would store at a size out of all
 * proportion to what was sent, checked on the raw bytes of a body that has already parsed. A
 * refused body must be refused at the door: once queued it could only fail in the worker, and a
 * 200 must mean stored. What parses in JavaScript but not (or not sanely) in PostgreSQL's JSONB:
 *
 * - deep nesting: its parser recurses, and some 20,000 levels exhaust its stack;
 * - numbers: JSONB keeps each as `numeric`, exactly as written, and prints it in full decimal.
 *   A number must be one a 64-bit float can read (so every client can read back what it wrote;
 *   this bounds the integer digits to 309), have at most {@link MAX_NUMBER_SCALE} digits after
 *   the decimal point once its exponent is applied (PostgreSQL's own limit: `0e-16384` fails
 *   there), an exponent within ±{@link MAX_NUMBER_SCALE}, and, when written with an exponent,
 *   print in at most {@link MAX_PRINTED_NUMBER} characters (`0e-16383` is 8 bytes in and 16,385
 *   characters out). A whole body may grow by at most its own size when printed
 *   ({@link printedGrowthLimit}), so no request reads back more than twice as large as it was sent.
 *
 * One pass over the bytes outside strings; strings are skipped with `indexOf`, so a typical body,
 * mostly strings, costs a few microseconds per kilobyte. Only numbers with an exponent or of 15
 * characters and more are looked at closely. The path of a refused value is found by a second
 * pass, on the refused body only.
 */

/** Most levels of arrays and objects in a request body (the event itself is level 3). */
export const MAX_JSON_DEPTH = 64;

/** Most digits after the decimal point of a stored number: PostgreSQL's `numeric` limit. */
export const MAX_NUMBER_SCALE = 16_383;

/**
 * Most characters PostgreSQL may print for a number written with an exponent: room for every
 * 64-bit float in full (`5e-324` prints in 326 characters, `1.7976931348623157e308` in 309).
 */
export const MAX_PRINTED_NUMBER = 400;

/** How many characters all numbers of a body may gain when printed: the body's own size. */
export function printedGrowthLimit(bodyBytes: number): number {
  return Math.max(bodyBytes, 64 * MAX_PRINTED_NUMBER);
}

/** A value PostgreSQL would refuse, or store far larger than sent. */
export interface JsonLimitProblem {
  /** Path of the value from the root, `events[0].payload.n`, or `body` for the whole. */
  readonly field: string;
  readonly reason: string;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
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

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** What PostgreSQL makes of a JSON number literal, or why it cannot be stored. */
export function numberProblem(
  literal: string,
): { reason: string; printedLength?: undefined } | { reason?: undefined; printedLength: number } {
  const shown = abbreviate(literal);
  const value = Number(literal);
  if (!Number.isFinite(value)) return { reason: `the number ${shown} is too large` };
  const m = NUMBER.exec(literal);
  if (m === null) return { printedLength: literal.length };
  const [, sign = '', integer = '', fraction = '', exponentText] = m;
  const exponent = exponentText === undefined ? 0 : Number(exponentText);
  const digits = integer + fraction;
  const firstSignificant = digits.search(/[1-9]/);
  // A literal with a non-zero digit that reads as 0 lies below the smallest float.
  if (value === 0 && firstSignificant >= 0) {
    return { reason: `the number ${shown} is too small to represent` };
  }
  if (Math.abs(exponent) > MAX_NUMBER_SCALE) {
    return {
      reason: `the number ${shown} has an exponent beyond ±${MAX_NUMBER_SCALE}, which is not stored`,
    };
  }
  const scale = Math.max(0, fraction.length - exponent);
  if (scale > MAX_NUMBER_SCALE) {
    return {
      reason: `the number ${shown} has ${scale} digits after the decimal point; at most ${MAX_NUMBER_SCALE} can be stored`,
    };
  }
  // PostgreSQL prints the value in plain decimal: integer digits (at least "0"), then the scale.
  const point = integer.length + exponent;
  const integerDigits = firstSignificant < 0 ? 1 : Math.max(1, point - firstSignificant);
  const printedLength =
    (sign !== '' && firstSignificant >= 0 ? 1 : 0) + integerDigits + (scale > 0 ? scale + 1 : 0);
  if (exponentText !== undefined && printedLength > Math.max(MAX_PRINTED_NUMBER, literal.length)) {
    return {
      reason: `the number ${shown} would be stored as ${printedLength} characters; write it without an exponent, or use at most ${MAX_PRINTED_NUMBER}`,
    };
  }
  return { printedLength };
}

function abbreviate(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 20)}…${text.slice(-12)}`;
}

/**
 * Returns why the (valid) JSON in `bytes` cannot be stored, with the path of the value, or
 * undefined when it can. Numbers short enough to be ordinary (no exponent, at most 15
 * characters) are not parsed again.
 */
export function jsonLimitProblem(
  bytes: Buffer,
  maxDepth = MAX_JSON_DEPTH,
): JsonLimitProblem | undefined {
  let depth = 0;
  let growth = 0;
  const growthLimit = printedGrowthLimit(bytes.length);
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const c = bytes[i] as number;
    if (c === QUOTE) {
      i = endOfString(bytes, i + 1);
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) {
        return {
          field: pathAt(bytes, i),
          reason: `arrays and objects are nested more than ${maxDepth} levels deep`,
        };
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
        const literal = bytes.toString('latin1', start, i + 1);
        const number = numberProblem(literal);
        if (number.reason !== undefined)
          return { field: pathAt(bytes, start), reason: number.reason };
        growth += Math.max(0, number.printedLength - literal.length);
        if (growth > growthLimit) {
          return {
            field: pathAt(bytes, start),
            reason: `the numbers written with exponents up to here would be stored ${growth} characters longer than sent; at most ${growthLimit} (the body's size) is allowed`,
          };
        }
      }
    }
  }
  return undefined;
}

interface Frame {
  readonly array: boolean;
  /** Array: index of the current element. Object: key of the current member. */
  index: number;
  key: string;
  expectKey: boolean;
}

/**
 * The path of the value that starts at byte `offset` of valid JSON, e.g. `events[0].payload.n`,
 * `[2].topic`, or `body` for the root value.
 */
export function pathAt(bytes: Buffer, offset: number): string {
  const stack: Frame[] = [];
  for (let i = 0; i < offset; i++) {
    const c = bytes[i] as number;
    const top = stack[stack.length - 1];
    if (c === QUOTE) {
      const end = endOfString(bytes, i + 1);
      if (top !== undefined && !top.array && top.expectKey) {
        top.key = JSON.parse(bytes.toString('utf8', i, end + 1)) as string;
        top.expectKey = false;
      }
      i = end;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      stack.push({ array: c === OPEN_BRACKET, index: 0, key: '', expectKey: true });
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      stack.pop();
    } else if (c === COMMA && top !== undefined) {
      if (top.array) top.index++;
      else top.expectKey = true;
    }
  }
  let path = '';
  for (const frame of stack) {
    path += frame.array ? `[${frame.index}]` : path === '' ? frame.key : `.${frame.key}`;
  }
  return path === '' ? 'body' : path;
}
