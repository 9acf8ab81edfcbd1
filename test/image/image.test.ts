/**
 * The container image, as a user gets it: built from the Dockerfile by a real
 * engine (podman, from Debian), started, read from, health-checked and stopped.
 *
 * No container registry can be reached here, so the official Node images are
 * replaced by stand-ins made from Debian packages and this machine's Node
 * (scripts/image-base.sh; `npm run test:deps` makes them once, cached), and
 * `npm ci` inside the build gets no network at all: it installs from the host's
 * npm cache, which also proves the lock file complete. scripts/build-image.sh
 * does both; this test runs it and then the image.
 *
 * Skipped only on a developer machine without podman or root; in CI (CI set) a
 * missing engine fails, so the check cannot silently disappear.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { until } from '../harness/until.js';

const root = resolve(import.meta.dirname, '../..');
const podmanScript = resolve(root, 'scripts/podman.sh');
// Per run: concurrent runs on one machine must not inspect or remove each other's image.
const TAG = `localhost/weightcache:test-${process.pid}`;
const NAME = `weightcache-image-test-${process.pid}`;
const DEMO = 'demo/tiny-llama';
// The build is minutes of CPU: cold (no cached layers) well under 15 min on 2 idle cores.
const BUILD_TIMEOUT_MS = 30 * 60_000;

const hasPodman = spawnSync('podman', ['--version']).status === 0;
const isRoot = process.getuid?.() === 0;
const skip = !process.env.CI && !(hasPodman && isRoot);

/** podman as CI runs it (runc, cgroupfs, ulimits within the machine's; scripts/podman.sh). */
function podman(args: string[], timeout = 120_000): SpawnSyncReturns<string> {
  return spawnSync('bash', [podmanScript, ...args], { encoding: 'utf8', timeout, maxBuffer: 64 * 2 ** 20 });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  expect(r.error, `${what}: ${r.error}`).toBeUndefined();
  expect(r.status, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** A file of the running container, as bytes (the origin's copy of the demo). */
function fileInContainer(path: string): Buffer {
  const r = spawnSync('bash', [podmanScript, 'exec', NAME, 'cat', path], {
    timeout: 60_000,
    maxBuffer: 2 ** 30,
  });
  expect(r.status, `cat ${path} in the container: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The image's HEALTHCHECK command (["CMD", …]); empty when the image has none. */
function healthcheck(): string[] {
  const hc = JSON.parse(
    ok(podman(['image', 'inspect', '--format', '{{json .HealthCheck}}', TAG]), 'inspect'),
  );
  return hc?.Test ?? [];
}

describe.skipIf(skip)('container image (podman)', () => {
  let base = '';
  let port = 0;

  beforeAll(async () => {
    const t0 = Date.now();
    // Niced: the build shares two cores with the rest of the suite.
    const r = spawnSync(
      'nice',
      [
        '-n',
        '10',
        'bash',
        resolve(root, 'scripts/build-image.sh'),
        '--debian-base',
        '--offline',
        '--tag',
        TAG,
      ],
      { cwd: root, encoding: 'utf8', timeout: BUILD_TIMEOUT_MS, maxBuffer: 64 * 2 ** 20 },
    );
    ok(r, 'scripts/build-image.sh');
    const size = Number(
      ok(podman(['image', 'inspect', '--format', '{{.Size}}', TAG]), 'image inspect').trim(),
    );
    console.log(
      `image ${TAG}: ${(size / 2 ** 20).toFixed(0)} MiB, built in ${((Date.now() - t0) / 1000).toFixed(0)} s ` +
        `(${r.stderr.trim().split('\n').at(-1)})`,
    );
    base = r.stderr.match(/ready in \d+s: (\S+) and/)?.[1] ?? '';
    port = await freePort();
    // --health-interval disable: no systemd here to run podman's healthcheck timer;
    // the check itself runs below with `podman healthcheck run`.
    ok(
      podman([
        'run',
        '--detach',
        '--name',
        NAME,
        '--health-interval',
        'disable',
        '--publish',
        `127.0.0.1:${port}:8420`,
        TAG,
        'node',
        '--seed-demo',
        '--insecure',
        '--set',
        'http.listen=0.0.0.0:8420',
      ]),
      'podman run',
    );
  }, BUILD_TIMEOUT_MS + 120_000);

  afterAll(() => {
    podman(['rm', '--force', '--time', '0', NAME]);
    // The final image goes; the build cache (the npm ci layer above all) stays for the next run.
    podman(['rmi', TAG]);
  });

  it('ships dist/, the addon and the runtime dependencies only, runs as uid 10001, keeps its HEALTHCHECK', () => {
    const config = JSON.parse(
      ok(podman(['image', 'inspect', '--format', '{{json .Config}}', TAG]), 'inspect'),
    );
    expect(config.User).toBe('10001:10001');
    expect(config.Entrypoint).toEqual(['node', '/app/bin/weightcache.js']);
    // Docker format keeps it; an OCI-format build would have dropped it silently.
    expect(healthcheck().join(' ')).toContain('WC_HEALTHCHECK_URL');
    const listing = ok(
      podman([
        'run',
        '--rm',
        '--entrypoint',
        'sh',
        TAG,
        '-c',
        'ls /app; echo --; ls /app/node_modules; echo --; ls /app/addon/build/Release; echo --; ' +
          'for t in g++ gcc make python3; do command -v $t; done; true',
      ]),
      'listing the image',
    )
      .split('--')
      .map((part) => part.split(/\s+/).filter(Boolean));
    const [app, modules, addon, compilers] = listing as [string[], string[], string[], string[]];
    expect(app.sort()).toEqual(['addon', 'bin', 'dist', 'node_modules', 'package.json']);
    expect(addon).toEqual(['weightcache.node']);
    expect(modules).toEqual(expect.arrayContaining(['hono', 'pino', 'zod', 'yaml', 'undici']));
    for (const buildOnly of ['typescript', 'node-gyp', 'node-addon-api', 'vitest', 'tsx', 'azurite']) {
      expect(modules, `${buildOnly} in the runtime image's node_modules`).not.toContain(buildOnly);
    }
    expect(compilers, 'build tools in the runtime image').toEqual([]);
  });

  it('serves /healthz, a demo file and a range of a shard with the origin bytes', async () => {
    const url = `http://127.0.0.1:${port}`;
    // Start-up generates the 224 MiB demo checkpoint first.
    await until(async () => (await fetch(`${url}/healthz`)).ok, {
      what: 'the container answers /healthz',
      timeoutMs: 180_000,
      stepMs: 250,
      retryErrors: true,
    });

    const configJson = await fetch(`${url}/v1/objects/${DEMO}/config.json`);
    expect(configJson.status).toBe(200);
    const body = Buffer.from(await configJson.arrayBuffer());
    expect(body.equals(fileInContainer(`/var/lib/weightcache/var/origin/${DEMO}/config.json`))).toBe(true);
    expect(JSON.parse(body.toString()).model_type).toBeDefined();

    const shard = `model-00002-of-00002.safetensors`;
    const start = 1_048_576 + 12_345;
    const end = start + 3 * 1_048_576; // crosses the boundary of the first 4 MiB chunk
    const ranged = await fetch(`${url}/v1/objects/${DEMO}/${shard}`, {
      headers: { Range: `bytes=${start}-${end}` },
    });
    expect(ranged.status).toBe(206);
    const whole = fileInContainer(`/var/lib/weightcache/var/origin/${DEMO}/${shard}`);
    expect(ranged.headers.get('content-range')).toBe(`bytes ${start}-${end}/${whole.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(whole.subarray(start, end + 1))).toBe(true);
  }, 240_000);

  it("the image's HEALTHCHECK reports healthy, and unhealthy when /healthz does not answer", () => {
    ok(podman(['healthcheck', 'run', NAME]), 'podman healthcheck run');
    expect(ok(podman(['inspect', '--format', '{{.State.Health.Status}}', NAME]), 'inspect').trim()).toBe(
      'healthy',
    );
    // The same command against a port nothing listens on must fail, or "healthy" means nothing.
    const test = healthcheck();
    expect(test[0]).toBe('CMD');
    const dead = podman([
      'exec',
      '--env',
      'WC_HEALTHCHECK_URL=http://127.0.0.1:9/healthz',
      NAME,
      ...test.slice(1),
    ]);
    expect(dead.status).toBe(1);
  }, 120_000);

  it('stops on SIGTERM within the grace period, draining, exit code 0', () => {
    const t0 = Date.now();
    ok(podman(['stop', '--time', '30', NAME], 60_000), 'podman stop');
    const seconds = (Date.now() - t0) / 1000;
    // 137 would mean the node ignored SIGTERM and podman sent SIGKILL after the 30 s.
    expect(ok(podman(['inspect', '--format', '{{.State.ExitCode}}', NAME]), 'inspect').trim()).toBe('0');
    const logs = podman(['logs', NAME]);
    expect(logs.stdout + logs.stderr).toContain('weightcache node stopped');
    console.log(`container stopped in ${seconds.toFixed(1)} s; base image ${base}`);
  }, 90_000);
});
