import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { binding } from '../../src/transport/binding.js';
import { TransportClient } from '../../src/transport/index.js';
import { type PeerProcess, startPeer } from './harness.js';
import { chunkBytes, testChunk } from './pattern.js';

const MiB = 1024 * 1024;

describe('transport between two processes', () => {
  let peer: PeerProcess;
  let client: TransportClient;

  beforeAll(async () => {
    peer = await startPeer('server.ts');
    client = new TransportClient({ host: '127.0.0.1', port: peer.port, timeoutMs: 10_000, connections: 2 });
  });
  afterAll(async () => {
    await client?.close();
    await peer?.kill('SIGTERM');
  });

  it('answers ping and stat', async () => {
    expect(await client.ping()).toBeGreaterThan(0);
    const info = await client.stat({ container: 'c', key: 'model.safetensors' });
    expect(info).toEqual({
      container: 'c',
      key: 'model.safetensors',
      etag: 'v1',
      size: 123,
      lastModified: new Date(1_700_000_000_000),
    });
  });

  it('moves whole chunks and sub-ranges from memory and from files, CRC32C verified', async () => {
    for (const key of ['buf/a', 'file/a']) {
      for (const [offset, length] of [
        [0, 4 * MiB],
        [12345, 65536],
        [4 * MiB - 1, 1],
        [0, 0],
      ] as const) {
        const name = testChunk(key, 3);
        const got = await client.readChunk(name, offset, length);
        const want = chunkBytes(name, offset, length);
        expect(got.data.equals(want), `${key} ${offset}+${length}`).toBe(true);
        expect(got.crc32c).toBe(length ? crc32c(want) : 0);
      }
    }
  });

  it('multiplexes many concurrent requests over the pool, each answered with its own bytes', async () => {
    const reads = Array.from({ length: 3000 }, (_, i) => {
      const name = testChunk(i % 2 ? 'buf/m' : 'file/m', i % 64);
      const offset = (i * 4099) % (3 * MiB);
      return client.readChunk(name, offset, 4096).then((r) => r.data.equals(chunkBytes(name, offset, 4096)));
    });
    const ok = await Promise.all(reads);
    expect(ok.every(Boolean)).toBe(true);
  });

  it('carries the handler’s error code in an error frame', async () => {
    const missing = client.readChunk(testChunk('missing'), 0, 10);
    await expect(missing).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(client.readChunk(testChunk('buf/x'), 4 * MiB, 10)).rejects.toMatchObject({
      code: 'RANGE_NOT_SATISFIABLE',
    });
    await expect(client.stat({ container: 'c', key: 'missing' })).rejects.toBeInstanceOf(CacheError);
    // The connection survives errors.
    expect(await client.ping()).toBeGreaterThan(0);
  });

  it('refuses a read larger than maxFrameBytes before sending it', async () => {
    const small = new TransportClient({
      host: '127.0.0.1',
      port: peer.port,
      timeoutMs: 5000,
      maxFrameBytes: MiB,
    });
    await expect(small.readChunk(testChunk('buf/a'), 0, 2 * MiB)).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
    await small.close();
  });

  it('receives payloads straight into their buffers (no user-space copy on the client)', async () => {
    const before = binding().transportStats();
    await client.readChunk(testChunk('buf/z'), 0, 4 * MiB);
    const after = binding().transportStats();
    expect(after.bytesReceivedDirect - before.bytesReceivedDirect).toBe(4 * MiB);
    expect(after.bytesCopied).toBe(0);
  });
});
