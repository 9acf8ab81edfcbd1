/**
 * The front doors on the native door's fast path, in this process
 * (addon/src/http/doors/, docs/native-http-door.md "The front doors on the
 * fast path"): a door whose fast path has the Hub and S3 routes answers a
 * Hub download at a published commit and S3 GetObjects from the real native
 * store while the JavaScript thread is blocked; `main`, an unpublished
 * commit and a removed one reach JavaScript. With auth on, SigV4-signed S3
 * GetObjects (header and presigned) are verified and answered there too,
 * and every failure reaches JavaScript. Azure Get Blobs (x-ms-range, the
 * blob's Content-MD5) are answered there too, without auth and, with a
 * bearer token, with it. Also run under ASan+UBSan
 * (scripts/native-checks.mjs). Across real node processes with real
 * clients: test/hub/hub-fast-path.test.ts, test/s3/s3-fast-path.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { get } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { keyIdOf, TokenSet } from '../../src/auth/tokens.js';
import { NativeHttpDoor, type NativeHttpRequest } from '../../src/http/native-door.js';
import { presignedQuery, signedHeaders, UNSIGNED_PAYLOAD } from '../../src/s3/sigv4.js';
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
/**
 * A one-thread native door on a free port over `fast`; what goes to JavaScript is recorded and
 * answered `status` "from javascript".
 */
function startDoor(
  fast: NonNullable<Parameters<typeof NativeHttpDoor.start>[0]['fast']>,
  status: number,
): { door: NativeHttpDoor; toJs: NativeHttpRequest[] } {
  const toJs: NativeHttpRequest[] = [];
  const door = NativeHttpDoor.start(
    { host: '127.0.0.1', port: 0, threads: 1, fast },
    {
      onRequest(req) {
        toJs.push(req);
        door.respond(req.id, status, { 'Content-Type': 'text/plain' }, Buffer.from('from javascript'));
      },
    },
  );
  doors.push(door);
  return { door, toJs };
}

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
    const { door, toJs } = startDoor(
      { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000, doors: routes },
      404,
    );
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

  it('verifies signed S3 GetObjects on the I/O thread and leaves every failure to JavaScript', async () => {
    const token = 'signed-in-process-0123456789abcdef';
    const store = createNativeStore({ maxBytes: 16 * MiB });
    const bindings = new (binding().NativeBindings)();
    const tokens = new (binding().NativeTokens)();
    tokens.replace(true, TokenSet.of([{ token, containers: ['models'] }]).grants());
    expect(() =>
      tokens.replace(true, [
        { digest: new Uint8Array(32), admin: false, containers: null, secret: 5 as unknown as string },
      ]),
    ).toThrow(/secret must be a string/);
    const routes = new (binding().NativeDoorRoutes)({
      hub: null,
      s3: { path: '/s3', baseDomain: null, buckets: null, maxClockSkewMs: 900_000 },
    });
    const { door, toJs } = startDoor(
      { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000, doors: routes },
      403,
    );
    const host = `127.0.0.1:${door.port}`;
    const data = Buffer.alloc(MiB + 7);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 255;
    const objectId = createHash('sha256').update('signed door fast path').digest().subarray(0, 16);
    expect(store.commit(objectId, 0, data, binding().crc32c(data), '')).toBeDefined();
    expect(
      bindings.set({
        name: 'models/w/a.bin',
        objectId,
        etag: 'v1',
        size: data.length,
        chunkSize: 4 * MiB,
        lastModified: new Date('2025-01-02T03:04:05Z').toUTCString(),
        contentType: 'application/octet-stream',
        validForMs: 60_000,
      }),
    ).toBe(true);
    const path = '/s3/models/w/a.bin';
    const creds = (secret = token) => ({ accessKeyId: keyIdOf(token), secretAccessKey: secret });
    const presigned = (secret?: string) =>
      `${path}?${presignedQuery({
        method: 'GET',
        host,
        uri: path,
        query: [],
        region: 'us-east-1',
        service: 's3',
        credentials: creds(secret),
        now: new Date(),
        expiresSeconds: 60,
      })
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&')}`;
    const headerArgs = (secret?: string, range?: string) =>
      Object.entries(
        signedHeaders({
          method: 'GET',
          host,
          uri: path,
          query: [],
          headers: range ? { range } : {},
          payloadHash: UNSIGNED_PAYLOAD,
          region: 'us-east-1',
          service: 's3',
          credentials: creds(secret),
          now: new Date(),
        }),
      ).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);

    // Each curl blocks this (the JavaScript) thread: only the I/O thread can answer.
    expect(curl([`http://${host}${presigned()}`]).equals(data)).toBe(true);
    expect(curl([...headerArgs(), `http://${host}${path}`]).equals(data)).toBe(true);
    expect(
      curl([...headerArgs(undefined, 'bytes=5-9'), `http://${host}${path}`]).equals(data.subarray(5, 10)),
    ).toBe(true);
    expect(routes.stats()).toMatchObject({ s3Hits: 3, s3BodyHits: 3, s3SignedHits: 3, s3SignedDeclined: 0 });
    expect(toJs).toHaveLength(0);

    // A wrong secret either way, no signature, and a token without the bucket: JavaScript's.
    // node:http sends no fields but Host and Connection: the fields the fast path reads, nothing more.
    const asked = (target: string, headers: Record<string, string> = {}) =>
      new Promise<void>((done, fail) => {
        get({ host: '127.0.0.1', port: door.port, path: target, headers }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            expect(res.statusCode, target).toBe(403);
            expect(Buffer.concat(parts).toString()).toBe('from javascript');
            done();
          });
        }).on('error', fail);
      });
    await asked(presigned('wrong-secret-0123456789abcdef'));
    const wrong = headerArgs('wrong-secret-0123456789abcdef');
    await asked(
      path,
      Object.fromEntries(
        wrong
          .filter((_, i) => i % 2 === 1)
          .map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 2)]),
      ),
    );
    await asked(path);
    tokens.replace(true, TokenSet.of([{ token, containers: ['datasets'] }]).grants());
    await asked(presigned());
    expect(toJs).toHaveLength(4);
    expect(routes.stats()).toMatchObject({ s3SignedHits: 3, s3SignedDeclined: 4 });

    // The token removed from the set (another one kept): the signed requests that were just
    // verified, their signing keys in the thread's cache, are JavaScript's at once.
    tokens.replace(true, TokenSet.of([{ token, containers: ['models'] }]).grants());
    const url = presigned();
    const signedFields = headerArgs();
    expect(curl([`http://${host}${url}`]).equals(data)).toBe(true);
    expect(curl([...signedFields, `http://${host}${path}`]).equals(data)).toBe(true);
    expect(routes.stats()).toMatchObject({ s3SignedHits: 5, s3SignedDeclined: 4 });
    tokens.replace(
      true,
      TokenSet.of([{ token: 'another-token-0123456789abcdef', containers: ['models'] }]).grants(),
    );
    await asked(url);
    await asked(
      path,
      Object.fromEntries(
        signedFields
          .filter((_, i) => i % 2 === 1)
          .map((h) => [h.slice(0, h.indexOf(':')), h.slice(h.indexOf(':') + 2)]),
      ),
    );
    expect(toJs).toHaveLength(6);
    expect(routes.stats()).toMatchObject({ s3SignedHits: 5, s3SignedDeclined: 6 });
    await until(() => door.stats().fastChunkRefs === 0, { what: 'chunk references released' });
  });

  it('answers Azure Get Blob / Get Blob Properties while JavaScript is blocked', async () => {
    const store = createNativeStore({ maxBytes: 16 * MiB });
    const bindings = new (binding().NativeBindings)();
    const tokens = new (binding().NativeTokens)();
    tokens.replace(false, []);
    const routes = new (binding().NativeDoorRoutes)({
      hub: null,
      s3: null,
      azure: { path: '/azure', account: 'weights', maxClockSkewMs: 900_000 },
    });
    const { door, toJs } = startDoor(
      { store, bindings, tokens, maxRanges: 16, keepAliveTimeoutMs: 5000, doors: routes },
      403,
    );
    const url = `http://127.0.0.1:${door.port}/azure/weights/models/w/a.bin`;
    const data = Buffer.alloc(MiB + 7);
    for (let i = 0; i < data.length; i++) data[i] = (i * 17) & 255;
    const objectId = createHash('sha256').update('azure door fast path').digest().subarray(0, 16);
    expect(store.commit(objectId, 0, data, binding().crc32c(data), '')).toBeDefined();
    const md5 = createHash('md5').update(data).digest('base64');
    const bind = (contentMd5: unknown) =>
      bindings.set({
        name: 'models/w/a.bin',
        objectId,
        etag: '0x8DC',
        size: data.length,
        chunkSize: 4 * MiB,
        lastModified: new Date('2025-01-02T03:04:05Z').toUTCString(),
        contentType: 'application/octet-stream',
        contentMd5: contentMd5 as string,
        validForMs: 60_000,
      });
    expect(() => bind(5)).toThrow(/contentMd5 must be a string/);
    expect(bind('bad\nvalue')).toBe(false); // a value JavaScript would not send as it is
    expect(bind(md5)).toBe(true);

    // Each curl blocks this (the JavaScript) thread: only the I/O thread can answer.
    expect(curl([url]).equals(data)).toBe(true);
    const ranged = curl(['-D', '-', '-H', 'x-ms-range: bytes=10-19', '-H', 'Range: bytes=0-0', url]);
    const head = ranged.subarray(0, ranged.indexOf('\r\n\r\n')).toString('latin1');
    expect(head).toMatch(
      /^HTTP\/1.1 206 Partial Content\r\nx-ms-request-id: [0-9a-f-]{36}\r\nx-ms-version: 2025-11-05\r\n/,
    );
    expect(head).toContain(
      `\r\nx-ms-blob-content-length: ${data.length}\r\nx-ms-blob-content-md5: ${md5}\r\n`,
    );
    expect(ranged.subarray(ranged.indexOf('\r\n\r\n') + 4).equals(data.subarray(10, 20))).toBe(true);
    expect(curl(['-I', url]).toString('latin1')).toContain(`\r\nContent-MD5: ${md5}\r\n`);
    expect(routes.stats()).toMatchObject({ azureHits: 3, azureBodyHits: 2, azureSignedHits: 0 });
    expect(toJs).toHaveLength(0);

    // With auth: a bearer token of the container is answered here; none, another account: JavaScript's.
    const token = 'azure-in-process-0123456789abcdef';
    tokens.replace(true, TokenSet.of([{ token, containers: ['models'] }]).grants());
    expect(curl(['-H', `Authorization: Bearer ${token}`, url]).equals(data)).toBe(true);
    expect(routes.stats()).toMatchObject({ azureHits: 4, azureSignedHits: 1, azureSignedDeclined: 0 });
    // node:http sends no fields but Host and Connection (and these): fields the fast path reads, nothing more.
    const status = (target: string, headers: Record<string, string> = {}) =>
      new Promise<number>((done, fail) => {
        get(target, { headers }, (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode ?? 0));
        }).on('error', fail);
      });
    expect(await status(url)).toBe(403);
    expect(await status(url.replace('/weights/', '/other/'), { Authorization: `Bearer ${token}` })).toBe(403);
    expect(toJs.map((r) => r.path)).toEqual(['/azure/weights/models/w/a.bin', '/azure/other/models/w/a.bin']);
    expect(routes.stats()).toMatchObject({ azureSignedDeclined: 1 });
    await until(() => door.stats().fastChunkRefs === 0, { what: 'chunk references released' });
  });
});
