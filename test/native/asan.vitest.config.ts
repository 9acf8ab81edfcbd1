/**
 * The vitest config of the ASan+UBSan run (scripts/native-checks.mjs asan):
 * the main config without its globalSetup, because that run happens inside
 * `npm test`, whose own globalSetup already compiled dist/ — compiling it
 * again would rewrite files that other test processes are reading.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Sanitized code is 2-5x slower, and this runs beside the rest of npm test: one worker.
    maxWorkers: 1,
    pool: 'forks',
    reporters: ['default'],
  },
});
