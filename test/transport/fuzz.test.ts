/**
 * Random and mutated frames against a live server: every input must end in
 * either a served request or a closed connection, never a crash or a hang,
 * and the server must keep serving well-formed clients afterwards. (The
 * libFuzzer target addon/fuzz/frame_fuzzer.cc drives the C++ decoder alone,
 * much harder; see docs/transport.md.)
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binding } from '../../src/transport/binding.js';
import { type ChunkPayload, TransportClient, TransportServer } from '../../src/transport/index.js';
import { encodeReadChunk } from '../../src/transport/messages.js';
import { FrameType } from '../../src/transport/protocol.js';
import { chunkBytes, testChunk } from './pattern.js';
import { helloFrame, rawFrame } from './raw-frame.js';
import { rawConnect } from './raw-socket.js';

const quiet = { info() {}, warn() {} };

describe('fuzzing the server with random frames', () => {
  let server: TransportServer;
  beforeAll(async () => {
    server = await TransportServer.listen({
      host: '127.0.0.1',
      port: 0,
      logger: quiet,
      preAuthTimeoutMs: 300,
      maxFrameBytes: 1 << 20,
      handler: {
        async readChunk(name, offset, length): Promise<ChunkPayload> {
          return { kind: 'buffer', data: chunkBytes(name, offset, length) };
        },
        async stat(n) {
          return { ...n, etag: 'v1', size: 1, lastModified: new Date(0) };
        },
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function deliver(bytes: Buffer): Promise<void> {
    const raw = await rawConnect(server.address.port);
    raw.sock.end(bytes); // FIN after the bytes: a half frame must end in a close, not a hang
    await raw.closed;
  }

  const valid = Buffer.concat([
    helloFrame(),
    rawFrame({ type: FrameType.PING, requestId: 1, meta: Buffer.alloc(8) }),
    rawFrame({
      type: FrameType.READ_CHUNK,
      requestId: 2,
      meta: encodeReadChunk({ name: testChunk('buf/f', 0, 1 << 20), offset: 10, length: 100 }),
    }),
    rawFrame({ type: FrameType.STAT, requestId: 3, meta: Buffer.from([1, 0, 0x63, 1, 0, 0x6b]) }),
  ]);

  it('survives random bytes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (bytes) => {
        await deliver(Buffer.from(bytes));
      }),
      { numRuns: 150 },
    );
  });

  it('survives valid streams with bytes flipped, cut or inserted', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(2)), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.nat(valid.length),
        async (edits, cut) => {
          let b = Buffer.from(valid);
          for (const [at, v, op] of edits) {
            if (op === 0) b[at % b.length] = v;
            else if (op === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from([v]), b.subarray(at)]);
            else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
          }
          await deliver(b.subarray(0, Math.max(1, cut)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('still serves well-formed clients, and counted the protocol errors', async () => {
    const c = new TransportClient({
      host: '127.0.0.1',
      port: server.address.port,
      timeoutMs: 5000,
      logger: quiet,
    });
    const name = testChunk('buf/after', 1);
    expect((await c.readChunk(name, 0, 1 << 20)).data.equals(chunkBytes(name, 0, 1 << 20))).toBe(true);
    await c.close();
    expect(binding().transportStats().protocolErrors).toBeGreaterThan(0);
  });
});
