/**
 * Reading JSON without changing numbers. The service returns payloads as stored, every digit kept
 * (`2868860079149422351`, `0.1000000000000000055511151231257827`); a plain JSON.parse would round
 * them to doubles. Where the browser has JSON.rawJSON and the reviver's source text, a number whose
 * double does not print back as it was written stays as its text, and JSON.stringify writes it
 * out unchanged. Counters and other numbers that a double holds exactly stay numbers.
 */

/** JSON.parse that keeps the written digits of numbers a double would change. */
export function parseExact(text) {
  if (typeof JSON.rawJSON !== 'function') return JSON.parse(text);
  return JSON.parse(text, (_key, value, context) =>
    typeof value === 'number' &&
    typeof context?.source === 'string' &&
    String(value) !== context.source
      ? JSON.rawJSON(context.source)
      : value,
  );
}
