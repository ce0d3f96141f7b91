import { defineConfig } from 'vitest/config';

// BACKENDS (comma list) picks the backend combinations the shared suites run on; by default all
// whose services are reachable. REQUIRE_SERVICES=1 turns an unreachable PostgreSQL or Redis into
// a failure instead of a loud skip (CI sets it).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
