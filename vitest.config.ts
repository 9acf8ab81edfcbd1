import { defineConfig } from 'vitest/config';

/**
 * The RESP suites that run against a server (test/resp/harness.ts): run twice, on the JavaScript
 * door and on the native door (resp.door: native), so every behaviour they check holds on both.
 */
const RESP_SERVER_SUITES = [
  'test/resp/abuse.test.ts',
  'test/resp/admission.test.ts',
  'test/resp/auth.test.ts',
  'test/resp/auth-throttle.test.ts',
  'test/resp/cli-tools.test.ts',
  'test/resp/getrange.property.test.ts',
  'test/resp/invalidate.test.ts',
  'test/resp/ioredis.test.ts',
  'test/resp/node.test.ts',
  'test/resp/prefetch.test.ts',
  'test/resp/redis-py.test.ts',
  'test/resp/reply-memory.test.ts',
  'test/resp/versions.test.ts',
];

/**
 * Suites that start nodes on the default HTTP door (http.door: native): run once more on the
 * JavaScript door (http.door: js), which stays the reference and serves TLS listeners.
 */
const HTTP_DOOR_SUITES = [
  'test/http/connections.test.ts',
  'test/http/doors-common.test.ts',
  'test/http/error-answers.test.ts',
  'test/http/log-hygiene.test.ts',
  'test/http/pipelining.test.ts',
  'test/http/prefetch.test.ts',
  'test/http/send-read.test.ts',
  'test/s3/clients.test.ts',
  'test/hub/hub.test.ts',
  'test/azure-blob/azure-blob.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/harness/build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests start real processes and servers; two cores here, so keep parallelism modest.
    maxWorkers: 2,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'all', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'resp-native-door',
          include: RESP_SERVER_SUITES,
          env: { WEIGHTCACHE_RESP_DOOR: 'native' },
        },
      },
      {
        extends: true,
        test: {
          name: 'http-js-door',
          include: HTTP_DOOR_SUITES,
          env: { WEIGHTCACHE_TEST_HTTP_DOOR: 'js' },
        },
      },
    ],
  },
});
