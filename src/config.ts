/**
 * The only reader of `process.env`. Every setting is parsed, range-checked and frozen here, so a
 * bad value stops the process at start with one message that lists every problem, instead of
 * surfacing later as odd behaviour. Defaults are documented in README.md (Configuration).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { DuplicatePolicy } from './store/store.js';
import { PARTITION_INTERVALS, type PartitionInterval } from './store/sql/partitions.js';

export type Role = 'api' | 'worker' | 'all';

/** What an API key may do: publish events, read them and the counters, or everything. */
export type Scope = 'publish' | 'read' | 'admin';

export const SCOPES: readonly Scope[] = ['publish', 'read', 'admin'];

/** An API key as the service keeps it: its name and scopes, and only a digest of the secret. */
export interface ApiKey {
  readonly name: string;
  readonly scopes: readonly Scope[];
  /** SHA-256 of the secret; the secret itself is never kept, so it cannot be logged. */
  readonly digest: Buffer;
}

/** Shortest secret accepted in API_KEYS. */
export const MIN_SECRET_LENGTH = 16;

export interface Config {
  /** Which parts run in this process: the HTTP API, the queue workers, or both. */
  readonly role: Role;
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  /** PostgreSQL connection string; unset means the embedded PGlite store under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly pgPoolSize: number;
  /** Redis connection string; unset means the inbox queue inside the store. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key this service owns, so several deployments can share one Redis. */
  readonly redisKeyPrefix: string;
  /** Redis Cluster seed nodes (`host:port`); set, the queue is sharded over the cluster. */
  readonly redisClusterNodes: readonly string[];
  /** Streams the Redis Cluster queue is spread over. */
  readonly redisStreamShards: number;
  /** Replicas that must hold a queued entry before the 200 (Redis `WAIT`); 0 does not wait. */
  readonly redisMinReplicas: number;
  /** OTLP/HTTP endpoint traces are sent to (`<url>/v1/traces`); unset, tracing is off. */
  readonly otelEndpoint: string | undefined;
  /** NATS server URL(s), comma-separated; set, the queue is a JetStream stream (REDIS_URL must be unset). */
  readonly natsUrl: string | undefined;
  /** The JetStream stream holding the queue. */
  readonly natsStream: string;
  /** Copies of each queued message in a NATS cluster. */
  readonly natsReplicas: number;
  /** The stream's byte limit (0: none); past it a publish is refused at the server. */
  readonly natsMaxBytes: number;
  /** Deliveries after which a message is parked as poison (each earlier one ended its worker). */
  readonly natsMaxDeliver: number;
  readonly maxEventsPerRequest: number;
  readonly maxBodyBytes: number;
  /** Events accepted but not yet applied above which `POST /publish` answers 503. */
  readonly queueMaxEvents: number;
  readonly retryAfterSeconds: number;
  readonly workersEnabled: boolean;
  /**
   * With ROLE=all: worker processes to fork beside the API process (0 = workers run inside it).
   * `auto` is 1 on PostgreSQL, so one `npm start` uses two cores; PGlite needs 0.
   */
  readonly workerProcesses: number;
  readonly workerConcurrency: number;
  /** Queue messages (one per publish request) a worker applies in one transaction. */
  readonly workerBatchMessages: number;
  readonly workerBlockMs: number;
  /** How long a delivered message may stay unacknowledged before another worker takes it over. */
  readonly claimIdleMs: number;
  /** Minimum age of a ledger row before it may be pruned (never while its message is pending). */
  readonly ledgerRetentionMs: number;
  readonly shutdownTimeoutMs: number;
  /** Stable name of this process among the workers of a consumer group. */
  readonly instanceId: string;
  /** API_KEYS; empty means the API is open, as the replaced system was. */
  readonly apiKeys: readonly ApiKey[];
  /** Days events are kept, by event time; 0 keeps them forever. */
  readonly retentionDays: number;
  /** Per-topic retention overriding retentionDays (0 = forever for that topic). */
  readonly retentionTopicDays: ReadonlyMap<string, number>;
  readonly retentionIntervalMs: number;
  /** Days the key of an event whose payload expired is still remembered; 0 = forever. */
  readonly keyRetentionDays: number;
  /** The event time each partition of the events table covers (docs/storage.md). */
  readonly partitionInterval: PartitionInterval;
  /** What happens to a duplicate that differs from the stored copy. */
  readonly duplicatePolicy: DuplicatePolicy;
  /**
   * Whether the trigram index over the search granules' words exists: fast rare-term search and
   * field filters at a cost to ingest (docs/search.md). The granules are written either way.
   */
  readonly searchIndex: boolean;
  /** Requests per key (or per client address) per window; 0 turns rate limiting off. */
  readonly rateLimitMax: number;
  readonly rateLimitWindowMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  string(name: string, fallback: string): string {
    const raw = this.env[name];
    return raw === undefined || raw.trim() === '' ? fallback : raw.trim();
  }

  optionalUrl(name: string, protocols: readonly string[]): string | undefined {
    const raw = this.env[name]?.trim();
    if (raw === undefined || raw === '') return undefined;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      this.problems.push(`${name} is not a URL`);
      return undefined;
    }
    if (!protocols.includes(url.protocol)) {
      this.problems.push(`${name} must use ${protocols.join(' or ')} (got ${url.protocol})`);
    }
    return raw;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw)) {
      this.problems.push(`${name} must be a whole number, got "${raw}"`);
      return fallback;
    }
    const value = Number(raw);
    if (value < min || value > max) {
      this.problems.push(`${name} must be between ${min} and ${max}, got ${value}`);
      return fallback;
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.env[name]?.trim().toLowerCase();
    if (raw === undefined || raw === '') return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    this.problems.push(`${name} must be true or false, got "${raw}"`);
    return fallback;
  }

  /**
   * API_KEYS: comma-separated `name:scopes:secret`, scopes joined by `+`, e.g.
   * `billing:publish:…,ops:admin:…`. Problems name the entry, never its secret.
   */
  apiKeys(name: string): ApiKey[] {
    const raw = this.env[name]?.trim();
    if (raw === undefined || raw === '') return [];
    const keys: ApiKey[] = [];
    raw.split(',').forEach((entry, i) => {
      const [keyName = '', scopeList = '', ...rest] = entry.trim().split(':');
      const secret = rest.join(':');
      const where = `${name} entry ${i + 1}`;
      if (!/^[\w.-]{1,64}$/.test(keyName)) {
        this.problems.push(`${where}: the name must be 1-64 letters, digits, '.', '_' or '-'`);
        return;
      }
      const scopes = scopeList.split('+');
      const unknown = scopes.filter((sc) => !(SCOPES as readonly string[]).includes(sc));
      if (unknown.length > 0 || scopeList === '') {
        this.problems.push(`${where} (${keyName}): scopes must be among ${SCOPES.join(', ')}`);
        return;
      }
      if (secret.length < MIN_SECRET_LENGTH) {
        this.problems.push(
          `${where} (${keyName}): the secret must be at least ${MIN_SECRET_LENGTH} characters`,
        );
        return;
      }
      if (keys.some((k) => k.name === keyName)) {
        this.problems.push(`${where}: the name ${keyName} is used twice`);
        return;
      }
      keys.push({
        name: keyName,
        scopes: scopes as Scope[],
        digest: createHash('sha256').update(secret).digest(),
      });
    });
    return keys;
  }

  /** `topic=days,topic=days`: per-topic whole numbers of days. */
  topicDays(name: string): Map<string, number> {
    const days = new Map<string, number>();
    const raw = this.env[name]?.trim();
    if (raw === undefined || raw === '') return days;
    for (const entry of raw.split(',')) {
      const at = entry.lastIndexOf('=');
      const topic = entry.slice(0, at).trim();
      const value = entry.slice(at + 1).trim();
      if (at <= 0 || topic === '' || !/^\d+$/.test(value) || Number(value) > 1_000_000) {
        this.problems.push(
          `${name}: "${entry.trim()}" is not topic=days (whole days, 0 = forever)`,
        );
        continue;
      }
      days.set(topic, Number(value));
    }
    return days;
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    this.problems.push(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
    return fallback;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Reads and validates the configuration; throws ConfigError listing every bad value. */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const config: { -readonly [K in keyof Config]: Config[K] } = {
    role: r.oneOf<Role>('ROLE', 'all', ['api', 'worker', 'all']),
    host: r.string('HOST', '0.0.0.0'),
    port: r.integer('PORT', 8080, 0, 65535),
    logLevel: r.oneOf('LOG_LEVEL', 'info', LOG_LEVELS),
    databaseUrl: r.optionalUrl('DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: r.string('DATA_DIR', './data'),
    pgPoolSize: r.integer('PG_POOL_SIZE', 10, 1, 1000),
    redisUrl: r.optionalUrl('REDIS_URL', ['redis:', 'rediss:']),
    redisKeyPrefix: r.string('REDIS_KEY_PREFIX', 'aggregator'),
    redisClusterNodes: (env.REDIS_CLUSTER_NODES ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n !== ''),
    redisStreamShards: r.integer('REDIS_STREAM_SHARDS', 16, 1, 16384),
    redisMinReplicas: r.integer('REDIS_MIN_REPLICAS', 0, 0, 16),
    otelEndpoint: r.optionalUrl('OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']),
    natsUrl: r.optionalUrl('NATS_URL', ['nats:', 'tls:']),
    natsStream: r.string('NATS_STREAM', 'aggregator'),
    natsReplicas: r.integer('NATS_REPLICAS', 1, 1, 5),
    natsMaxBytes: r.integer('NATS_MAX_BYTES', 0, 0, Number.MAX_SAFE_INTEGER),
    natsMaxDeliver: r.integer('NATS_MAX_DELIVER', 20, 2, 10_000),
    maxEventsPerRequest: r.integer('MAX_EVENTS_PER_REQUEST', 1000, 1, 100_000),
    maxBodyBytes: r.integer('MAX_BODY_BYTES', 5 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    queueMaxEvents: r.integer('QUEUE_MAX_EVENTS', 2_000_000, 1, 1_000_000_000),
    retryAfterSeconds: r.integer('RETRY_AFTER_SECONDS', 1, 1, 3600),
    workersEnabled: r.boolean('WORKERS_ENABLED', true),
    workerProcesses: 0,
    workerConcurrency: r.integer('WORKER_CONCURRENCY', 2, 1, 64),
    workerBatchMessages: r.integer('WORKER_BATCH_MESSAGES', 50, 1, 1000),
    workerBlockMs: r.integer('WORKER_BLOCK_MS', 1000, 10, 60_000),
    claimIdleMs: r.integer('CLAIM_IDLE_MS', 30_000, 100, 24 * 3600_000),
    ledgerRetentionMs: r.integer('LEDGER_RETENTION_MS', 3600_000, 1000, 30 * 24 * 3600_000),
    shutdownTimeoutMs: r.integer('SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    instanceId: r.string('INSTANCE_ID', `${hostname()}-${process.pid}`),
    apiKeys: r.apiKeys('API_KEYS'),
    retentionDays: r.integer('RETENTION_DAYS', 0, 0, 1_000_000),
    retentionTopicDays: r.topicDays('RETENTION_TOPIC_DAYS'),
    retentionIntervalMs: r.integer('RETENTION_INTERVAL_MS', 60_000, 100, 24 * 3600_000),
    keyRetentionDays: r.integer('KEY_RETENTION_DAYS', 0, 0, 1_000_000),
    partitionInterval: r.oneOf('PARTITION_INTERVAL', 'day', PARTITION_INTERVALS),
    duplicatePolicy: r.oneOf('DUPLICATE_POLICY', 'first-wins', ['first-wins', 'reject-conflicts']),
    searchIndex: r.oneOf('SEARCH_INDEX', 'on', ['on', 'off']) === 'on',
    rateLimitMax: r.integer('RATE_LIMIT_MAX', 0, 0, 1_000_000_000),
    rateLimitWindowMs: r.integer('RATE_LIMIT_WINDOW_MS', 60_000, 100, 24 * 3600_000),
  };
  const processes = env.WORKER_PROCESSES?.trim() ?? '';
  if (processes === '' || processes === 'auto') {
    config.workerProcesses =
      config.databaseUrl !== undefined && config.role === 'all' && config.workersEnabled ? 1 : 0;
  } else {
    config.workerProcesses = r.integer('WORKER_PROCESSES', 0, 0, 64);
    if (config.workerProcesses > 0 && config.databaseUrl === undefined) {
      r.problems.push(
        'WORKER_PROCESSES needs DATABASE_URL: the embedded PGlite store belongs to one process',
      );
    }
  }
  if (config.databaseUrl === undefined && config.role !== 'all') {
    r.problems.push(
      `ROLE=${config.role} needs DATABASE_URL: the embedded PGlite store belongs to one process, which must run both the API and the workers`,
    );
  }
  const queues = [
    config.natsUrl !== undefined ? 'NATS_URL' : undefined,
    config.redisUrl !== undefined ? 'REDIS_URL' : undefined,
    config.redisClusterNodes.length > 0 ? 'REDIS_CLUSTER_NODES' : undefined,
  ].filter((q) => q !== undefined);
  if (queues.length > 1) r.problems.push(`${queues.join(' and ')} set: choose one queue`);
  for (const node of config.redisClusterNodes) {
    if (!/^[^\s:]+:\d{1,5}$/.test(node)) {
      r.problems.push(`REDIS_CLUSTER_NODES: "${node}" is not host:port`);
    }
  }
  if (!/^[A-Za-z0-9_-]+$/.test(config.natsStream)) {
    r.problems.push(`NATS_STREAM must be letters, digits, - and _ (got "${config.natsStream}")`);
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return Object.freeze(config);
}
