/**
 * A stand-in request (READ_CHUNK flag STAND_IN) goes out as such only to a peer
 * whose HELLO announced FEATURE_STAND_IN; to an older peer, whose strict
 * decoder refuses unknown flags, the same read goes out local-only, as it did
 * before the flag existed. The peer here is a plain TCP server speaking the
 * protocol byte by byte (raw-frame.ts), so it can be either build.
 */
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TransportClient } from '../../src/transport/client.js';
import {
  decodeHello,
  decodeReadChunk,
  encodeError,
  encodeHello,
  type ReadChunkRequest,
} from '../../src/transport/messages.js';
import {
  FEATURE_CONTENT_MD5,
  FEATURE_STAND_IN,
  FLAG_RESPONSE,
  FrameType,
  HEADER_BYTES,
} from '../../src/transport/protocol.js';
import { rawFrame } from './raw-frame.js';

const quiet = { warn() {}, info() {}, error() {}, debug() {} };
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A peer announcing `features` that answers every READ_CHUNK NOT_FOUND and records what it decoded. */
async function peer(features: number): Promise<{ port: number; reads: ReadChunkRequest[] }> {
  const reads: ReadChunkRequest[] = [];
  const server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => {});
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= HEADER_BYTES) {
        const metaLen = buf.readUInt32LE(12);
        const end = HEADER_BYTES + metaLen + Number(buf.readBigUInt64LE(16));
        if (buf.length < end) break;
        const type = buf[3]!;
        const requestId = buf.readUInt32LE(8);
        const meta = buf.subarray(HEADER_BYTES, HEADER_BYTES + metaLen);
        buf = buf.subarray(end);
        if (type === FrameType.HELLO) {
          const h = decodeHello(meta);
          const reply = encodeHello({
            ...h,
            minVersion: 1,
            maxVersion: 1,
            features,
            nodeId: 'peer',
            extensions: [],
          });
          sock.write(rawFrame({ type, flags: FLAG_RESPONSE, requestId, meta: reply }));
        } else if (type === FrameType.READ_CHUNK) {
          reads.push(decodeReadChunk(meta));
          const err = encodeError('NOT_FOUND', 'not here');
          sock.write(rawFrame({ type: FrameType.ERROR, flags: FLAG_RESPONSE, requestId, meta: err }));
        }
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { port: typeof a === 'object' && a ? a.port : 0, reads };
}

const name = { originId: 'o', container: 'c', key: 'k', etag: 'e', size: 10, chunkSize: 10, index: 0 };

describe('READ_CHUNK STAND_IN across builds', () => {
  for (const [what, features, expected] of [
    ['an older peer (no FEATURE_STAND_IN): local-only', FEATURE_CONTENT_MD5, { localOnly: true }],
    [
      'a peer announcing FEATURE_STAND_IN: the report',
      FEATURE_CONTENT_MD5 | FEATURE_STAND_IN,
      { standInFor: ['10.0.0.1:7420'] },
    ],
  ] as const) {
    it(`goes to ${what}`, async () => {
      const p = await peer(features);
      const c = new TransportClient({ host: '127.0.0.1', port: p.port, timeoutMs: 5000, logger: quiet });
      try {
        await expect(c.readChunk(name, 0, 10, { standInFor: ['10.0.0.1:7420'] })).rejects.toMatchObject({
          code: 'NOT_FOUND',
        });
        await expect(c.readChunk(name, 0, 10)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      } finally {
        await c.close();
      }
      expect(p.reads).toEqual([
        { name, offset: 0, length: 10, ...expected },
        { name, offset: 0, length: 10 },
      ]);
    });
  }
});
