/**
 * The median delay between a stored event and its later copies, from the log-scale histogram the
 * apply statements keep in `dedup_delays` (bucket b holds delays d with floor(4 * log2(d + 1)) = b,
 * so a bucket's middle is within 19% of any delay in it).
 */

/** `value`, but never above `max`; null stays null. */
export function capped(value: number | null, max: number): number | null {
  return value === null ? null : Math.min(value, max);
}

/**
 * The median delay of a dedup_delays histogram, in ms, reported as the middle of its bucket;
 * null for an empty histogram.
 */
export function medianOfBuckets(buckets: readonly { bucket: number; n: number }[]): number | null {
  const total = buckets.reduce((sum, b) => sum + b.n, 0);
  if (total === 0) return null;
  let seen = 0;
  for (const b of [...buckets].sort((x, y) => x.bucket - y.bucket)) {
    seen += b.n;
    if (seen * 2 >= total) {
      const low = 2 ** (b.bucket / 4) - 1;
      const high = 2 ** ((b.bucket + 1) / 4) - 1;
      return Math.round(((low + high) / 2) * 100) / 100;
    }
  }
  return null;
}
