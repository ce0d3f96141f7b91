/**
 * Which services the tests may use. PGlite needs nothing; PostgreSQL and Redis are used when
 * reachable (TEST_DATABASE_URL, TEST_REDIS_URL) and skipped loudly otherwise, unless
 * REQUIRE_SERVICES=1 makes their absence a failure.
 */
export type BackendName =
  | 'pglite-inbox'
  | 'pglite-redis'
  | 'postgres-inbox'
  | 'postgres-redis'
  | 'postgres-jetstream'
  | 'postgres-redis-cluster';

const ALL_BACKENDS: readonly BackendName[] = [
  'pglite-inbox',
  'pglite-redis',
  'postgres-inbox',
  'postgres-redis',
  'postgres-jetstream',
  'postgres-redis-cluster',
];

/**
 * Backends that run only the contract suite and the focused suites that ask for them
 * (suiteBackends' `focused` option), unless BACKENDS names them: keeps CI short.
 */
const FOCUSED_BACKENDS: readonly BackendName[] = ['postgres-jetstream', 'postgres-redis-cluster'];

export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TEST_NATS_URL = process.env.TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
export const REQUIRE_SERVICES = ['1', 'true', 'yes'].includes(
  (process.env.REQUIRE_SERVICES ?? '').toLowerCase(),
);

export function requestedBackends(): BackendName[] {
  const raw = process.env.BACKENDS?.trim();
  if (raw === undefined || raw === '' || raw === 'all') return [...ALL_BACKENDS];
  const names = raw.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(ALL_BACKENDS as readonly string[]).includes(name)) {
      throw new Error(`BACKENDS: unknown backend "${name}"; use ${ALL_BACKENDS.join(', ')}`);
    }
  }
  return names as BackendName[];
}

export function needsPostgres(backend: BackendName): boolean {
  return backend.startsWith('postgres');
}

/** Whether the backend uses the shared single-node Redis (the cluster backend starts its own). */
export function needsRedis(backend: BackendName): boolean {
  return backend.endsWith('redis');
}

/** Whether the backend runs on a private Redis Cluster the test starts. */
export function needsRedisCluster(backend: BackendName): boolean {
  return backend.endsWith('redis-cluster');
}

export function needsNats(backend: BackendName): boolean {
  return backend.endsWith('jetstream');
}

/**
 * Whether a heavy shared suite runs on `backend`: the focused backends only when BACKENDS names
 * them.
 */
export function inEverySuite(backend: BackendName): boolean {
  if (!FOCUSED_BACKENDS.includes(backend)) return true;
  const raw = process.env.BACKENDS?.trim();
  return raw !== undefined && raw !== '' && raw !== 'all';
}
