import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests start real processes and servers; two cores here, so keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
    reporters: ['default'],
  },
});
