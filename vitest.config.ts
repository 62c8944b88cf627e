import { defineConfig } from 'vitest/config';

const FAST = ['test/unit/**/*.test.ts', 'test/workflow/**/*.test.ts', 'test/replay.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    // Integration tests run real migrations; 2 files at a time matches the 2-core machines.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 240_000,
    hookTimeout: 240_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: FAST } },
      // As in `npm run test:fast`: the files of one fork share its module cache (@temporalio's native
      // modules and the workflow tests' Runtime load once per fork, not once per file).
      { extends: true, test: { name: 'fast', include: FAST, isolate: false } },
    ],
  },
});
