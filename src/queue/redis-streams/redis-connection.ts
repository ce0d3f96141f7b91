/**
 * The Redis side of the Redis Streams queue: connections with the queue's Lua scripts loaded, and
 * the one place Redis failures become the registry's errors.
 */
import { Redis } from 'ioredis';
import { AggregatorError, QueueUnavailableError } from '../../errors.js';

/**
 * Appends one entry and counts it in the depth hash, atomically, unless the queue is full.
 * KEYS: stream, depth hash. ARGV: max events, event count, request body, traceparent (or '').
 * Returns the id or false.
 */
export const ENQUEUE_LUA = `
local depth = tonumber(redis.call('HGET', KEYS[2], 'events') or '0')
local n = tonumber(ARGV[2])
if depth > 0 and depth + n > tonumber(ARGV[1]) then return false end
local id
if ARGV[4] ~= nil and ARGV[4] ~= '' then
  id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[2], 'b', ARGV[3], 't', ARGV[4])
else
  id = redis.call('XADD', KEYS[1], '*', 'n', ARGV[2], 'b', ARGV[3])
end
redis.call('HINCRBY', KEYS[2], 'events', n)
redis.call('HINCRBY', KEYS[2], 'messages', 1)
return id`;

/**
 * Acknowledges and deletes entries, and takes exactly the acknowledged ones off the depth.
 * KEYS: stream, depth hash. ARGV: group, then id and event count pairs. Returns entries acked.
 */
export const ACK_LUA = `
local acked, events = 0, 0
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[i])
    acked = acked + 1
    events = events + tonumber(ARGV[i + 1])
  end
end
if acked > 0 then
  redis.call('HINCRBY', KEYS[2], 'events', -events)
  redis.call('HINCRBY', KEYS[2], 'messages', -acked)
end
return acked`;

export const GROUP = 'workers';
/** Consumers with nothing pending and silent this long are removed from the group. */
export const DEAD_CONSUMER_IDLE_MS = 3600_000;

interface ScriptCommands {
  aggEnqueue(
    stream: string,
    depth: string,
    max: number,
    n: number,
    body: Buffer | string,
    traceparent: string,
  ): Promise<string | null>;
  aggAck(
    stream: string,
    depth: string,
    group: string,
    ...idsAndCounts: (string | number)[]
  ): Promise<number>;
}

export type ScriptedRedis = Redis & ScriptCommands;

function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return /Connection is closed|Command aborted due to connection close|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|max retries|Stream isn't writeable|LOADING|MASTERDOWN|READONLY|Command timed out|^BUSY|TRYAGAIN|CLUSTERDOWN|Cluster is disconnect|Cluster isn't ready|Node is disconnected|None of startup nodes|Too many Cluster redirections|Failed to refresh slots|NOREPLICAS|MOVED \d+|ASK \d+/i.test(
    `${error.message} ${String((error as { code?: string }).code ?? '')}`,
  );
}

/** The one place Redis failures become the registry's errors. */
export function mapRedisError(error: unknown, retryAfterSeconds = 1): Error {
  if (error instanceof AggregatorError) return error;
  if (isConnectionError(error)) return new QueueUnavailableError(error);
  // Redis at its maxmemory refuses writes: for a publisher that is a full queue.
  if (error instanceof Error && error.message.startsWith('OOM')) {
    return new AggregatorError('AGG_ERR_QUEUE_FULL', 'Redis is out of memory; retry later', [], {
      cause: error,
      retryAfterSeconds,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}

export function connect(url: string, extra: { commandTimeout?: number } = {}): ScriptedRedis {
  const redis = new Redis(url, {
    protocol: 2,
    // Fail a command quickly while Redis is away instead of queueing it for long: the API
    // answers 503 and the publisher retries; workers back off.
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    enableOfflineQueue: true,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
    ...extra,
  });
  redis.defineCommand('aggEnqueue', { numberOfKeys: 2, lua: ENQUEUE_LUA });
  redis.defineCommand('aggAck', { numberOfKeys: 2, lua: ACK_LUA });
  // Errors reach the callers of commands; without a listener ioredis would print each retry.
  redis.on('error', () => undefined);
  return redis as ScriptedRedis;
}
