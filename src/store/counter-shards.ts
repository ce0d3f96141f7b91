/**
 * The counter shards: every counter table (`topic_counters`, `dedup_stats`, `dedup_delays`) keeps
 * one row per topic (and source) per shard, summed on read, so concurrent writers rarely wait on
 * the same row. This is the one place that says which writer adds to which shard:
 *
 * | shards   | writer                                                   |
 * |----------|----------------------------------------------------------|
 * | 0..63    | queue consumers, one shard per consumer name            |
 * | 64..127  | atomic applies (POST /publish?atomic=true), in turn      |
 * | -1       | retention (expired payloads, forgotten keys)             |
 * | -2       | late conflict checks (resolvePendingConflicts)           |
 *
 * The column is a smallint; nothing else depends on the numbers, so they may change freely.
 */

/** How many shards the queue consumers spread over, from 0. */
export const CONSUMER_SHARDS = 64;

/** First shard of the atomic applies; they take CONSUMER_SHARDS shards in turn from here. */
export const ATOMIC_SHARD_FIRST = CONSUMER_SHARDS;
const ATOMIC_SHARDS = 64;

/** The shard of retention's updates (expired, keys_expired). */
export const RETENTION_SHARD = -1;

/** The shard of conflicts found after the fact by the pending conflict checks. */
export const LATE_CONFLICT_SHARD = -2;

/** A queue consumer's shard: stable per consumer name, in 0..CONSUMER_SHARDS-1. */
export function consumerShard(name: string): number {
  let hash = 0;
  for (let i = 0; i < name.length; i++) hash = (hash * 31 + name.charCodeAt(i)) | 0;
  return Math.abs(hash) % CONSUMER_SHARDS;
}

let lastAtomicShard = ATOMIC_SHARD_FIRST + ATOMIC_SHARDS - 1;

/**
 * The shard for the next atomic apply of this process: the atomic shards in turn, so concurrent
 * atomic publishes rarely share a row and never share one with a consumer.
 */
export function nextAtomicShard(): number {
  lastAtomicShard =
    lastAtomicShard >= ATOMIC_SHARD_FIRST + ATOMIC_SHARDS - 1
      ? ATOMIC_SHARD_FIRST
      : lastAtomicShard + 1;
  return lastAtomicShard;
}
