import { defineConfig } from 'vitest/config';

/**
 * `npm run test:fast`: what needs no stack (no PostgreSQL clusters, no moto): unit tests, the
 * workflows on fake activities against an in-memory Temporal dev server, and replay of recorded
 * histories. `npm test` (vitest.config.ts) runs these too, with the integration tests.
 */
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/workflow/**/*.test.ts', 'test/replay.test.ts'],
    globalSetup: ['test/fast-global-setup.ts'],
    pool: 'forks',
    // The files of one fork share its module cache: @temporalio's native modules and the workflow
    // tests' Runtime load once per fork instead of once per file (2-3 s each on a busy 2-core box).
    isolate: false,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
