/** Nanosecond Unix times (OTLP, Loki) as the ISO 8601 timestamps events carry. */

/** 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in Unix milliseconds: years 1 to 9999. */
const FIRST_MS = -62_135_596_800_000;
const AFTER_LAST_MS = 253_402_300_800_000;

/**
 * `1714564800123456789n` → `2024-05-01T12:00:00.123456789Z`; undefined when the instant lies
 * outside what an event timestamp may be (years 1 to 9999 once rounded to the microseconds the
 * store keeps), the rule POST /publish applies (src/timestamp.ts).
 */
export function timestampFromNanos(nanos: bigint): string | undefined {
  const fraction = Number(((nanos % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n);
  const ms = Number((nanos - BigInt(fraction)) / 1_000_000n);
  // The store rounds to microseconds: 9999-12-31T23:59:59.9999995Z would become year 10000.
  const stored = ms + (fraction >= 999_999_500 ? 1000 : 0);
  if (ms < FIRST_MS || stored >= AFTER_LAST_MS) return undefined;
  return `${new Date(ms).toISOString().slice(0, 19)}.${String(fraction).padStart(9, '0')}Z`;
}
