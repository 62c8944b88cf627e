import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Integration tests run real migrations, and spend most of their time waiting (for gates, timers,
    // replication, the databases): 3 files at a time keeps 2 cores busy (2 at a time: 1046 s for 85
    // files on the 2-core CI machine, most of it idle).
    pool: 'forks',
    maxWorkers: 3,
    testTimeout: 240_000,
    hookTimeout: 240_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
