import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MetaError, MetaReader, MetaWriter } from '../../src/transport/codec.js';
import {
  decodeError,
  decodeHello,
  decodeObjectInfo,
  decodeReadChunk,
  encodeError,
  encodeHello,
  encodeObjectInfo,
  encodeReadChunk,
} from '../../src/transport/messages.js';

const str = fc.string({ maxLength: 300 });
const u32 = fc.nat(0xffffffff);
const safe = fc.nat(Number.MAX_SAFE_INTEGER);

describe('message meta codecs', () => {
  it('round-trip every message', () => {
    fc.assert(
      fc.property(
        str,
        str,
        str,
        str,
        safe,
        u32,
        u32,
        safe,
        u32,
        (originId, container, key, etag, size, chunkSize, index, offset, length) => {
          const q = { name: { originId, container, key, etag, size, chunkSize, index }, offset, length };
          expect(decodeReadChunk(encodeReadChunk(q))).toEqual(q);
          expect(decodeReadChunk(encodeReadChunk({ ...q, localOnly: true }))).toEqual({
            ...q,
            localOnly: true,
          });
          const info = { container, key, etag, size, lastModified: new Date(offset % 8.64e15) };
          expect(decodeObjectInfo(encodeObjectInfo(info))).toEqual(info);
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.nat(0xffff),
        fc.nat(0xffff),
        u32,
        str,
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 4 }),
        (a, b, f, nodeId, exts) => {
          const h = {
            minVersion: a,
            maxVersion: b,
            features: f,
            maxFrameBytes: f,
            maxInFlight: f,
            nodeId,
            extensions: exts.map((v, tag) => ({ tag, value: Buffer.from(v) })),
          };
          expect(decodeHello(encodeHello(h))).toEqual(h);
        },
      ),
    );
  });

  it('rejects truncated or trailing meta, and integers past 2^53', () => {
    const good = encodeReadChunk({
      name: { originId: 'o', container: 'c', key: 'k', etag: 'e', size: 10, chunkSize: 10, index: 0 },
      offset: 0,
      length: 10,
    });
    for (let cut = 0; cut < good.length; cut++) {
      expect(() => decodeReadChunk(good.subarray(0, cut))).toThrow(MetaError);
    }
    expect(() => decodeReadChunk(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing/);
    const big = Buffer.alloc(8);
    big.writeBigUInt64LE(2n ** 53n);
    expect(() => new MetaReader(big).u64()).toThrow(/exceeds 2\^53-1/);
    expect(() => new MetaWriter().str('x'.repeat(70_000))).toThrow(/exceeds 65535/);
  });

  it('maps an error code this build does not know to INTERNAL, keeping the name', () => {
    const err = decodeError(new MetaWriter().str('PEER_ON_FIRE').str('smoke').bytes(), '10.0.0.1:7420');
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toBe('peer 10.0.0.1:7420: PEER_ON_FIRE: smoke');
    expect(decodeError(encodeError('NOT_FOUND', 'gone'), 'p').code).toBe('NOT_FOUND');
  });

  it('cuts long error messages so an error frame always fits', () => {
    const meta = encodeError('INTERNAL', 'é'.repeat(10_000));
    expect(meta.length).toBeLessThan(4200);
    expect(decodeError(meta, 'p').message.startsWith('peer p: éé')).toBe(true);
  });
});
