/**
 * The front doors on the native door's fast path, in this process
 * (addon/src/http/doors/, docs/native-http-door.md "The front doors on the
 * fast path"): a door whose fast path has the Hub and S3 routes answers a
 * Hub download at a published commit and S3 GetObjects from the real native
 * store while the JavaScript thread is blocked; `main`, an unpublished
 * commit and a removed one reach JavaScript. Also run under ASan+UBSan
 * (scripts/native-checks.mjs). Across real node processes with real
 * clients: test/hub/hub-fast-path.test.ts, test/s3/s3-fast-path.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeHttpDoor, type NativeHttpRequest } from '../../src/http/native-door.js';
import { createNativeStore } from '../../src/store/native.js';
import { binding } from '../../src/transport/binding.js';
import { until } from '../harness/until.js';

const MiB = 2 ** 20;
const SHA = 'c'.repeat(40);
const doors: NativeHttpDoor[] = [];
afterEach(() => {
  for (const d of doors.splice(0)) d.stop();
});

/** curl, run synchronously (this thread blocked); without the sanitizer runtime the ASan run preloads. */
function curl(args: string[]): Buffer {
  const { LD_PRELOAD: _, ...env } = process.env;
  return execFileSync('curl', ['-s', ...args], { env, maxBuffer: 64 * MiB });
}

describe('front doors on the fast path, in process', () => {
  it('answers Hub downloads at a published commit and S3 GetObjects while JavaScript is blocked', async () => {
    const store = createNativeStore({ maxBytes: 64 * MiB });
    const bindings = new (binding().NativeBindings)();
    const tokens = new (binding().NativeTokens)();
    tokens.replace(false, []);
    const routes = new (binding().NativeDoorRoutes)({
      hub: { path: '/hf', container: 'models', maxFiles: 100 },
      s3: { path: '/s3', baseDomain: null, buckets: ['models'] },
    });
    const toJs: NativeHttpRequest[] = [];
    const door = NativeHttpDoor.start(
      {
        host: '127.0.0.1',
        port: 0,
        threads: 1,
        fast: { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000, doors: routes },
      },
      {
        onRequest(req) {
          toJs.push(req);
          door.respond(req.id, 404, { 'Content-Type': 'text/plain' }, Buffer.from('from javascript'));
        },
      },
    );
    doors.push(door);
    const url = `http://127.0.0.1:${door.port}`;
    const data = Buffer.alloc(6 * MiB);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 255;
    const objectId = createHash('sha256').update('door fast path').digest().subarray(0, 16);
    for (let i = 0; i < 2; i++) {
      const part = data.subarray(i * 4 * MiB, Math.min(data.length, (i + 1) * 4 * MiB));
      expect(store.commit(objectId, i, part, binding().crc32c(part), '')).toBeDefined();
    }
    const lastModified = new Date('2025-01-02T03:04:05Z').toUTCString();
    expect(
      bindings.set({
        name: 'models/acme/llama/model.bin',
        objectId,
        etag: 'v1',
        size: data.length,
        chunkSize: 4 * MiB,
        lastModified,
        contentType: 'application/octet-stream',
        validForMs: 60_000,
      }),
    ).toBe(true);
    const file = {
      path: 'model.bin',
      etag: 'v1',
      size: data.length,
      blobId: 'b'.repeat(40),
      contentType: 'application/octet-stream',
    };
    expect(
      routes.publishHubRevision({ sha: SHA, prefix: 'acme/llama/', files: [file], validForMs: 60_000 }),
    ).toBe(true);

    // Each curl blocks this (the JavaScript) thread: only the I/O thread can answer.
    const hub = curl(['-D', '-', `${url}/hf/acme/llama/resolve/${SHA}/model.bin`, '-r', '4194000-4194999']);
    const hubHead = hub.subarray(0, hub.indexOf('\r\n\r\n')).toString('latin1');
    expect(hubHead).toMatch(
      /^HTTP\/1.1 206 Partial Content\r\nX-Repo-Commit: c{40}\r\nETag: "v1"\r\nX-Linked-Etag: "b{40}"\r\n/,
    );
    expect(hubHead).toContain(`\r\nContent-Range: bytes 4194000-4194999/${data.length}\r\n`);
    expect(hub.subarray(hub.indexOf('\r\n\r\n') + 4).equals(data.subarray(4194000, 4195000))).toBe(true);
    expect(curl([`${url}/s3/models/acme/llama/model.bin`]).equals(data)).toBe(true);
    const s3Head = curl(['-I', `${url}/s3/models/acme/llama/model.bin`]).toString('latin1');
    expect(s3Head).toMatch(/^HTTP\/1.1 200 OK\r\nx-amz-request-id: [0-9A-F]{16}\r\nETag: "v1"\r\n/);
    expect(routes.stats()).toMatchObject({ hubHits: 1, hubBodyHits: 1, s3Hits: 2, s3BodyHits: 1 });
    expect(toJs).toHaveLength(0);

    // main, an unknown bucket, and a commit no longer published: JavaScript's.
    const asked = async (path: string) => {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.text()).toBe('from javascript');
    };
    await asked('/hf/acme/llama/resolve/main/model.bin');
    await asked('/s3/other/acme/llama/model.bin');
    expect(routes.removeHubRevision(SHA)).toBe(true);
    await asked(`/hf/acme/llama/resolve/${SHA}/model.bin`);
    expect(toJs.map((r) => r.path)).toEqual([
      '/hf/acme/llama/resolve/main/model.bin',
      '/s3/other/acme/llama/model.bin',
      `/hf/acme/llama/resolve/${SHA}/model.bin`,
    ]);
    await until(() => door.stats().fastChunkRefs === 0, { what: 'chunk references released' });
  });
});
