/**
 * The zero-copy proof: the addon counts every payload byte it sends by path
 * (writev from pinned memory, sendfile from a file) and every byte it copies
 * in user space. Server and client share this process here so the counters
 * of both sides are visible; the sockets are still real.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { binding } from '../../src/transport/binding.js';
import { type ChunkPayload, TransportClient, TransportServer } from '../../src/transport/index.js';
import { chunkBytes, testChunk } from './pattern.js';

const MiB = 1024 * 1024;
const quiet = { info() {}, warn() {} };

describe('zero copy', () => {
  let server: TransportServer;
  let client: TransportClient;
  let dir: string;
  let file: string;
  const chunk = chunkBytes({ index: 0 }, 0, 4 * MiB);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wc-zc-'));
    file = join(dir, 'chunk');
    writeFileSync(file, chunk);
    server = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      logger: quiet,
      handler: {
        async readChunk(name, offset, length): Promise<ChunkPayload> {
          const crc = offset === 0 && length === chunk.length ? crc32c(chunk) : undefined;
          if (name.key === 'file') return { kind: 'file', path: file, offset, length, crc32c: crc };
          // A tier whose stored checksum no longer matches its bytes (bit rot, a bug).
          if (name.key === 'rotten')
            return { kind: 'buffer', data: chunk, crc32c: (crc32c(chunk) ^ 1) >>> 0 };
          return { kind: 'buffer', data: chunk.subarray(offset, offset + length), crc32c: crc };
        },
        async stat() {
          throw new Error('unused');
        },
      },
    });
    client = new TransportClient({
      host: '127.0.0.1',
      port: server.address.port,
      timeoutMs: 10_000,
      logger: quiet,
    });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends DRAM buffers with writev from the pinned Buffer: 0 bytes copied', async () => {
    const before = binding().transportStats();
    for (let i = 0; i < 8; i++) {
      const r = await client.readChunk(testChunk('buf'), 0, 4 * MiB);
      expect(r.data.equals(chunk)).toBe(true);
    }
    const sub = await client.readChunk(testChunk('buf'), 100, MiB);
    expect(sub.data.equals(chunk.subarray(100, 100 + MiB))).toBe(true);
    const after = binding().transportStats();
    expect(after.bytesWritev - before.bytesWritev).toBe(8 * 4 * MiB + MiB);
    expect(after.bytesCrcComputed - before.bytesCrcComputed).toBe(MiB); // only the sub-range
    expect(after.bytesCopied).toBe(0);
    expect(after.pinnedBuffers).toBe(0); // every pin released once the kernel had the bytes
  });

  it('sends chunk files with sendfile: 0 bytes copied', async () => {
    const before = binding().transportStats();
    for (let i = 0; i < 4; i++) {
      const r = await client.readChunk(testChunk('file'), 0, 4 * MiB);
      expect(r.data.equals(chunk)).toBe(true);
    }
    const sub = await client.readChunk(testChunk('file'), 4095, 70000);
    expect(sub.data.equals(chunk.subarray(4095, 4095 + 70000))).toBe(true);
    const after = binding().transportStats();
    expect(after.bytesSendfile - before.bytesSendfile).toBe(4 * 4 * MiB + 70000);
    expect(after.bytesWritev - before.bytesWritev).toBe(0);
    expect(after.bytesCopied).toBe(0);
  });

  it('never hands out bytes whose checksum does not match: CHECKSUM_MISMATCH, connection kept', async () => {
    await expect(client.readChunk(testChunk('rotten'), 0, 4 * MiB)).rejects.toMatchObject({
      code: 'CHECKSUM_MISMATCH',
    });
    expect((await client.readChunk(testChunk('buf'), 0, 4 * MiB)).data.equals(chunk)).toBe(true);
  });

  it('answers a file that vanished with TIER_IO instead of a torn frame', async () => {
    const gone = new TransportClient({
      host: '127.0.0.1',
      port: server.address.port,
      timeoutMs: 5000,
      logger: quiet,
    });
    rmSync(file);
    await expect(gone.readChunk(testChunk('file'), 0, 4 * MiB)).rejects.toMatchObject({ code: 'TIER_IO' });
    writeFileSync(file, chunk);
    expect((await gone.readChunk(testChunk('file'), 0, 4 * MiB)).data.equals(chunk)).toBe(true);
    await gone.close();
  });
});
