/** Nanosecond Unix times (OTLP, Loki) as the ISO 8601 timestamps events carry. */
import { normalizeTimestamp } from '../timestamp.js';

/**
 * `1714564800123456789n` → `2024-05-01T12:00:00.123456789Z`; undefined when the instant lies
 * outside what an event timestamp may be (years 1 to 9999). The store keeps microseconds.
 */
export function timestampFromNanos(nanos: bigint): string | undefined {
  const seconds = nanos / 1_000_000_000n;
  const fraction = ((nanos % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const wholeSeconds = fraction === 0n || nanos >= 0n ? seconds : seconds - 1n;
  const date = new Date(Number(wholeSeconds) * 1000);
  if (Number.isNaN(date.getTime())) return undefined;
  const iso = `${date.toISOString().slice(0, 19)}.${fraction.toString().padStart(9, '0')}Z`;
  return normalizeTimestamp(iso);
}
