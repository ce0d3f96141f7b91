/**
 * Which services the tests may use. PGlite needs nothing; PostgreSQL and Redis are used when
 * reachable (TEST_DATABASE_URL, TEST_REDIS_URL) and skipped loudly otherwise, unless
 * REQUIRE_SERVICES=1 makes their absence a failure.
 */
export type BackendName = 'pglite-inbox' | 'pglite-redis' | 'postgres-inbox' | 'postgres-redis';

const ALL_BACKENDS: readonly BackendName[] = [
  'pglite-inbox',
  'pglite-redis',
  'postgres-inbox',
  'postgres-redis',
];

export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
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

export function needsRedis(backend: BackendName): boolean {
  return backend.endsWith('redis');
}
