/**
 * A reader that stops reading must not make the server buffer without bound:
 * the addon stops reading that connection's requests at maxInFlight
 * unanswered ones, so what it holds is at most maxInFlight pinned responses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binding } from '../../src/transport/binding.js';
import { type ChunkPayload, TransportClient, TransportServer } from '../../src/transport/index.js';
import { encodeReadChunk } from '../../src/transport/messages.js';
import { FrameType } from '../../src/transport/protocol.js';
import { chunkBytes, testChunk } from './pattern.js';
import { helloFrame, rawFrame } from './raw-frame.js';
import { rawConnect } from './raw-socket.js';

const MiB = 1024 * 1024;
const MAX_IN_FLIGHT = 8;
const quiet = { info() {}, warn() {} };

describe('backpressure', () => {
  let server: TransportServer;
  let served = 0;
  beforeAll(async () => {
    server = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      logger: quiet,
      maxInFlightPerConnection: MAX_IN_FLIGHT,
      handler: {
        async readChunk(name, offset, length): Promise<ChunkPayload> {
          served++;
          return { kind: 'buffer', data: chunkBytes(name, offset, length) };
        },
        async stat() {
          throw new Error('unused');
        },
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('holds at most maxInFlight responses for a reader that does not read', async () => {
    const raw = await rawConnect(server.address.port);
    raw.sock.pause();
    const requests = 100;
    raw.sock.write(helloFrame());
    const meta = encodeReadChunk({ name: testChunk('buf/slow'), offset: 0, length: 4 * MiB });
    for (let i = 1; i <= requests; i++)
      raw.sock.write(rawFrame({ type: FrameType.READ_CHUNK, requestId: i, meta }));
    // Let the server do all it can: it fills the socket buffers, then must stop.
    let last = -1;
    for (let stable = 0; stable < 5; ) {
      await new Promise((r) => setTimeout(r, 100));
      stable = served === last ? stable + 1 : 0;
      last = served;
    }
    const s = binding().transportStats();
    expect(served).toBeLessThan(requests);
    expect(s.pinnedBuffers).toBeLessThanOrEqual(MAX_IN_FLIGHT);
    expect(s.queuedBytes).toBeLessThanOrEqual(MAX_IN_FLIGHT * (4 * MiB + 64));
    // Reading resumes the flow, and every request is answered in full.
    let received = 0;
    const want = requests * (32 + 4 * MiB) + 32 + 0; // responses + HELLO header (meta counted below)
    await new Promise<void>((resolve) => {
      raw.sock.on('data', (d: Buffer) => {
        received += d.length;
        if (received >= want) resolve();
      });
      raw.sock.resume();
    });
    expect(served).toBe(requests);
    raw.sock.destroy();
    await raw.closed;
  });

  it('close() does not wait forever for a peer that never reads its responses', async () => {
    const stuck = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      logger: quiet,
      closeGraceMs: 200,
      handler: {
        async readChunk(name, offset, length): Promise<ChunkPayload> {
          return { kind: 'buffer', data: chunkBytes(name, offset, length) };
        },
        async stat() {
          throw new Error('unused');
        },
      },
    });
    const raw = await rawConnect(stuck.address.port);
    raw.sock.pause();
    const meta = encodeReadChunk({ name: testChunk('buf/stuck'), offset: 0, length: 4 * MiB });
    raw.sock.write(helloFrame());
    for (let i = 1; i <= 32; i++)
      raw.sock.write(rawFrame({ type: FrameType.READ_CHUNK, requestId: i, meta }));
    await new Promise((r) => setTimeout(r, 300));
    await stuck.close(); // resolves once the grace period cut the connection
    raw.sock.resume();
    await raw.closed;
    const s = binding().transportStats();
    expect(s.pinnedBuffers).toBe(0);
    expect(s.queuedBytes).toBe(0);
  });

  it('a client with a small window queues instead of sending past it', async () => {
    const c = new TransportClient({
      host: '127.0.0.1',
      port: server.address.port,
      timeoutMs: 20_000,
      maxInFlight: 4,
      connections: 1,
      logger: quiet,
    });
    const name = testChunk('buf/q');
    const reads = await Promise.all(Array.from({ length: 200 }, () => c.readChunk(name, 0, 64 * 1024)));
    expect(reads.every((r) => r.data.equals(chunkBytes(name, 0, 64 * 1024)))).toBe(true);
    await c.close();
  });
});
