import { createHash } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CacheError } from '../../src/errors/cache-error.js';
import { AzureOrigin } from '../../src/origin/azure.js';
import { type AzuriteHandle, startAzurite } from '../harness/azurite.js';
import { type FaultProxy, startFaultProxy } from '../harness/fault-proxy.js';
import { bytesOf, CONTAINER, collect, expectCode, originContract } from './contract.js';

async function uploader(connectionString: string) {
  const service = BlobServiceClient.fromConnectionString(connectionString);
  const created = new Set<string>();
  return {
    async put(container: string, key: string, bytes: Buffer): Promise<void> {
      const c = service.getContainerClient(container);
      if (!created.has(container)) {
        await c.createIfNotExists();
        created.add(container);
      }
      await c.getBlockBlobClient(key).uploadData(bytes);
    },
    async remove(container: string, key: string): Promise<void> {
      await service.getContainerClient(container).getBlobClient(key).delete();
    },
  };
}

originContract('azure (Azurite)', async () => {
  const az = await startAzurite();
  // A pass-through proxy only to count requests: proves BAD_KEY is decided before any I/O.
  const proxy = await startFaultProxy({ target: `http://127.0.0.1:${az.port}` });
  const up = await uploader(az.connectionString);
  const viaProxy = az.connectionString.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${proxy.port}`);
  return {
    origin: new AzureOrigin({ connectionString: viaProxy, timeoutMs: 10_000 }),
    put: up.put,
    remove: up.remove,
    caps: { list: true },
    requests: () => proxy.requests.total,
    teardown: async () => {
      await proxy.stop();
      await az.stop();
    },
  };
});

describe('azure origin: faults', () => {
  let az: AzuriteHandle;
  let up: Awaited<ReturnType<typeof uploader>>;

  beforeAll(async () => {
    az = await startAzurite();
    up = await uploader(az.connectionString);
  });
  afterAll(async () => {
    await az?.stop();
  });

  it('id names account and endpoint but holds no key', () => {
    const o = new AzureOrigin({ connectionString: az.connectionString, timeoutMs: 1000 });
    expect(o.id).toBe(`azure:devstoreaccount1@http://127.0.0.1:${az.port}/devstoreaccount1`);
    expect(o.id).not.toContain('Eby8');
  });

  it('a malformed connection string is CONFIG_INVALID without echoing the key', () => {
    let err: unknown;
    try {
      new AzureOrigin({ connectionString: 'AccountName=x;AccountKey=c2VjcmV0', timeoutMs: 1000 });
    } catch (e) {
      err = e;
    }
    expect(CacheError.is(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).not.toContain('c2VjcmV0');
  });

  it('an account key Azure rejects is ORIGIN_UNAVAILABLE', async () => {
    const wrongKey = az.connectionString.replace(
      /AccountKey=[^;]+/,
      `AccountKey=${Buffer.alloc(64).toString('base64')}`,
    );
    const o = new AzureOrigin({ connectionString: wrongKey, timeoutMs: 5000 });
    await up.put(CONTAINER, 'auth/x.bin', bytesOf(10, 1));
    await expectCode(o.stat({ container: CONTAINER, key: 'auth/x.bin' }), 'ORIGIN_UNAVAILABLE');
  });

  it('container names Azure cannot hold are BAD_KEY before any I/O', async () => {
    // A dead endpoint: any request would fail with ORIGIN_UNAVAILABLE instead.
    const o = new AzureOrigin({
      connectionString: az.connectionString.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:9'),
      timeoutMs: 1000,
    });
    for (const container of ['Upper', 'ab', 'a_b', 'a--b', 'a.b', 'ends-', 'x'.repeat(64)]) {
      await expectCode(o.stat({ container, key: 'k' }), 'BAD_KEY');
      await expectCode(o.read({ container, key: 'k' }, { etag: 'e', size: 1 }, 0, 1), 'BAD_KEY');
      await expectCode(collect(o.list(container, '')), 'BAD_KEY');
    }
    await expectCode(o.stat({ container: 'a-b-3', key: 'k' }), 'ORIGIN_UNAVAILABLE');
  });

  it('listing stops at maxListResults', async () => {
    for (let i = 0; i < 7; i++) await up.put(CONTAINER, `cap/${i}.bin`, bytesOf(5, i));
    const o = new AzureOrigin({ connectionString: az.connectionString, timeoutMs: 5000, maxListResults: 5 });
    expect((await collect(o.list(CONTAINER, 'cap/'))).length).toBe(5);
    expect((await collect(o.list(CONTAINER, 'cap/', { limit: 100 }))).length).toBe(5);
    expect((await collect(o.list(CONTAINER, 'cap/', { limit: 3 }))).length).toBe(3);
  });

  it("stat, revalidate and list carry the blob's Content-MD5 only when Azure keeps one", async () => {
    const c = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(CONTAINER);
    await c.createIfNotExists();
    const withMd5 = bytesOf(1000, 1);
    const md5 = createHash('md5').update(withMd5).digest();
    await c
      .getBlockBlobClient('md5/with.bin')
      .uploadData(withMd5, { blobHTTPHeaders: { blobContentMD5: md5 } });
    // A committed block list with no x-ms-blob-content-md5: the blob has no Content-MD5 at all.
    const without = c.getBlockBlobClient('md5/without.bin');
    const block = Buffer.from('block-0').toString('base64');
    await without.stageBlock(block, bytesOf(500, 2), 500);
    await without.commitBlockList([block]);
    expect((await without.getProperties()).contentMD5).toBeUndefined();

    const o = new AzureOrigin({ connectionString: az.connectionString, timeoutMs: 5000 });
    const a = await o.stat({ container: CONTAINER, key: 'md5/with.bin' });
    expect(a.contentMd5).toBe(md5.toString('base64'));
    const b = await o.stat({ container: CONTAINER, key: 'md5/without.bin' });
    expect(b).not.toHaveProperty('contentMd5');
    expect(await o.revalidate(a)).toBe(a);
    // Replaced with other bytes and another Content-MD5: the new version carries the new one.
    const next = bytesOf(1000, 3);
    const md5Next = createHash('md5').update(next).digest();
    await c
      .getBlockBlobClient('md5/with.bin')
      .uploadData(next, { blobHTTPHeaders: { blobContentMD5: md5Next } });
    expect((await o.revalidate(a)).contentMd5).toBe(md5Next.toString('base64'));
    const listed = await collect(o.list(CONTAINER, 'md5/'));
    expect(listed.map((i) => [i.key, i.contentMd5])).toEqual([
      ['md5/with.bin', md5Next.toString('base64')],
      ['md5/without.bin', undefined],
    ]);
  });

  it('a dead endpoint is ORIGIN_UNAVAILABLE quickly, not minutes of SDK retries', async () => {
    // A port nothing listens on: Azurite's own, after stopping a second instance.
    const dead = await startAzurite();
    await dead.stop();
    const o = new AzureOrigin({ connectionString: dead.connectionString, timeoutMs: 3000 });
    const t0 = performance.now();
    const err = await o.stat({ container: CONTAINER, key: 'x' }).catch((e: unknown) => e);
    const ms = performance.now() - t0;
    expect(
      CacheError.is(err) && ['ORIGIN_UNAVAILABLE', 'ORIGIN_TIMEOUT'].includes(err.code),
      String(err),
    ).toBe(true);
    expect(ms).toBeLessThan(3000 + 1000);
  });

  it('a stalled endpoint is ORIGIN_TIMEOUT within timeoutMs', async () => {
    // A listener that accepts and never answers: the SDK's tryTimeout and our deadline must end it.
    const { createServer } = await import('node:net');
    const sockets: import('node:net').Socket[] = [];
    const server = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as import('node:net').AddressInfo).port;
    try {
      const cs = az.connectionString.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`);
      const o = new AzureOrigin({ connectionString: cs, timeoutMs: 800 });
      const t0 = performance.now();
      await expectCode(o.stat({ container: CONTAINER, key: 'x' }), 'ORIGIN_TIMEOUT');
      await expectCode(
        o.read({ container: CONTAINER, key: 'x' }, { etag: 'e', size: 10 }, 0, 10),
        'ORIGIN_TIMEOUT',
      );
      expect(performance.now() - t0).toBeLessThan(2 * 800 + 1000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('reads larger than 4 MiB skip the range MD5 but stay byte-exact', async () => {
    const bytes = bytesOf(5 * 1024 * 1024 + 17, 5);
    await up.put(CONTAINER, 'md5/big.bin', bytes);
    const o = new AzureOrigin({ connectionString: az.connectionString, timeoutMs: 10_000 });
    const v = await o.stat({ container: CONTAINER, key: 'md5/big.bin' });
    expect((await o.read(v, v, 0, v.size)).equals(bytes)).toBe(true);
    expect((await o.read(v, v, 1, 4 * 1024 * 1024)).equals(bytes.subarray(1, 1 + 4 * 1024 * 1024))).toBe(
      true,
    );
  });

  describe('through a fault-injecting proxy', () => {
    let proxy: FaultProxy;
    let o: AzureOrigin;
    const bytes = bytesOf(1024 * 1024, 77);
    const name = { container: CONTAINER, key: 'proxy/shard.bin' };

    beforeAll(async () => {
      proxy = await startFaultProxy({ target: `http://127.0.0.1:${az.port}` });
      const cs = az.connectionString.replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${proxy.port}`);
      o = new AzureOrigin({ connectionString: cs, timeoutMs: 1500 });
      await up.put(CONTAINER, name.key, bytes);
    });
    afterEach(() => proxy.setFault({ mode: 'ok' }));
    afterAll(async () => {
      await o?.close();
      await proxy?.stop();
    });

    it('a corrupted body is caught by the range MD5: ORIGIN_BAD_RESPONSE', async () => {
      const v = await o.stat(name);
      proxy.setFault({ mode: 'flip-byte', methods: ['GET'] });
      await expectCode(o.read(name, v, 0, 64 * 1024), 'ORIGIN_BAD_RESPONSE');
      await expectCode(o.read(name, v, 1000, bytes.length - 1000), 'ORIGIN_BAD_RESPONSE');
      proxy.setFault({ mode: 'ok' });
      expect((await o.read(name, v, 1000, 5000)).equals(bytes.subarray(1000, 6000))).toBe(true);
    });

    it('a body cut short is ORIGIN_BAD_RESPONSE', async () => {
      const v = await o.stat(name);
      proxy.setFault({ mode: 'short-body', methods: ['GET'] });
      await expectCode(o.read(name, v, 0, 200_000), 'ORIGIN_BAD_RESPONSE');
    });

    it('a body that stalls midway is ORIGIN_TIMEOUT within timeoutMs', async () => {
      const v = await o.stat(name);
      proxy.setFault({ mode: 'stall-body', methods: ['GET'] });
      const t0 = performance.now();
      await expectCode(o.read(name, v, 0, 200_000), 'ORIGIN_TIMEOUT');
      expect(performance.now() - t0).toBeLessThan(1500 + 700);
    });

    it('a caller abort ends a stalled call promptly with its AbortError', async () => {
      const v = await o.stat(name);
      proxy.setFault({ mode: 'stall' });
      const t0 = performance.now();
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      await expect(o.read(name, v, 0, 10, { signal: ac.signal })).rejects.toMatchObject({
        name: 'AbortError',
      });
      expect(performance.now() - t0).toBeLessThan(1000);
    });

    it('500s and dropped connections are ORIGIN_UNAVAILABLE', async () => {
      const v = await o.stat(name);
      proxy.setFault({ mode: 'error-500' });
      await expectCode(o.stat(name), 'ORIGIN_UNAVAILABLE');
      await expectCode(o.read(name, v, 0, 10), 'ORIGIN_UNAVAILABLE');
      proxy.setFault({ mode: 'close-immediately' });
      await expectCode(o.read(name, v, 0, 10), 'ORIGIN_UNAVAILABLE');
    });

    it('one 500 is absorbed by the single SDK retry', async () => {
      const v = await o.stat(name);
      proxy.setFault({ mode: 'error-500', times: 1 });
      expect((await o.read(name, v, 0, 100)).equals(bytes.subarray(0, 100))).toBe(true);
    });
  });
});
