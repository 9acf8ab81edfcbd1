import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { CacheError } from '../../src/errors/cache-error.js';
import { binding } from '../../src/transport/binding.js';
import { TransportClient } from '../../src/transport/index.js';
import { decodeObjectInfo, encodeObjectInfo, encodeObjectName } from '../../src/transport/messages.js';
import { FLAG_RESPONSE, FrameType, HEADER_BYTES } from '../../src/transport/protocol.js';
import { until } from '../harness/until.js';
import { type PeerProcess, startPeer } from './harness.js';
import { chunkBytes, testChunk } from './pattern.js';
import { helloFrame, rawFrame } from './raw-frame.js';
import { rawConnect } from './raw-socket.js';

/** The meta of the response of `type` to request `id` in what a raw connection received, once it is all there. */
function frameMeta(bytes: Buffer, type: number, id: number): Buffer | undefined {
  for (let at = 0; at + HEADER_BYTES <= bytes.length; ) {
    const meta = bytes.readUInt32LE(at + 12);
    const end = at + HEADER_BYTES + meta + Number(bytes.readBigUInt64LE(at + 16));
    if (end > bytes.length) return undefined;
    if (
      bytes[at + 3] === type &&
      bytes.readUInt16LE(at + 4) & FLAG_RESPONSE &&
      bytes.readUInt32LE(at + 8) === id
    ) {
      return bytes.subarray(at + HEADER_BYTES, at + HEADER_BYTES + meta);
    }
    at = end;
  }
  return undefined;
}

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

  it("carries the origin's Content-MD5 in STAT to a peer that announced it, never to one that did not", async () => {
    const info = await client.stat({ container: 'c', key: 'with-md5' });
    expect(info.contentMd5).toBe('XUFAKrxLKna5cZ2REBfFkg==');
    expect((await client.stat({ container: 'c', key: 'model.safetensors' })).contentMd5).toBeUndefined();
    // A peer of an older build: its HELLO announces no features, and the answer is the v1 layout it decodes.
    const raw = await rawConnect(peer.port);
    try {
      raw.sock.write(helloFrame());
      raw.sock.write(
        rawFrame({
          type: FrameType.STAT,
          requestId: 7,
          meta: encodeObjectName({ container: 'c', key: 'with-md5' }),
        }),
      );
      const meta = await until(() => frameMeta(raw.received(), FrameType.STAT, 7), {
        what: 'the STAT answer on a raw connection',
        timeoutMs: 10_000,
      });
      expect(decodeObjectInfo(meta)).toEqual({
        container: 'c',
        key: 'with-md5',
        etag: 'v1',
        size: 123,
        lastModified: new Date(1_700_000_000_000),
      });
      expect(meta.equals(encodeObjectInfo(decodeObjectInfo(meta)))).toBe(true);
    } finally {
      raw.sock.destroy();
    }
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
