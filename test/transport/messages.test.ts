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
  MAX_STAND_IN_REPORT,
  READ_LOCAL_ONLY,
  READ_STAND_IN,
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

  it("carries a STAT answer's Content-MD5 only to a peer that announced FEATURE_CONTENT_MD5", () => {
    const info = {
      container: 'models',
      key: 'a/b',
      etag: '0x8D',
      size: 5,
      lastModified: new Date(1_717_171_717_000),
    };
    const contentMd5 = 'XUFAKrxLKna5cZ2REBfFkg=='; // md5('hello')
    const v1 = encodeObjectInfo({ ...info, contentMd5 });
    // The v1 layout, byte for byte, for an older peer.
    expect(v1.toString('hex')).toBe(
      '0600 6d6f64656c73 0300 612f62 0400 30783844 0500000000000000 00803890f6fc7842'.replace(/\s+/g, ''),
    );
    expect(decodeObjectInfo(v1)).toEqual(info);
    const withField = encodeObjectInfo({ ...info, contentMd5 }, true);
    expect(withField.subarray(v1.length).toString('hex')).toBe(
      `10${Buffer.from(contentMd5, 'base64').toString('hex')}`,
    );
    expect(decodeObjectInfo(withField)).toEqual({ ...info, contentMd5 });
    const none = encodeObjectInfo(info, true);
    expect(none.subarray(v1.length).toString('hex')).toBe('00');
    expect(decodeObjectInfo(none)).toEqual(info);
    for (const bad of [Uint8Array.of(1, 0), Uint8Array.of(0, 0), Uint8Array.of(16, 1, 2)]) {
      expect(() => decodeObjectInfo(Buffer.concat([v1, bad]))).toThrow(MetaError);
    }
    expect(() => encodeObjectInfo({ ...info, contentMd5: 'AAAA' }, true)).toThrow(/Content-MD5/);
  });

  it('carries a stand-in report: flag bit 1, then u8 count and the addresses; refuses malformed ones', () => {
    const q = {
      name: { originId: 'o', container: 'c', key: 'k', etag: 'e', size: 10, chunkSize: 10, index: 0 },
      offset: 0,
      length: 10,
    };
    const plain = encodeReadChunk(q);
    const standIn = encodeReadChunk({ ...q, standInFor: ['10.0.0.5:7420', '[fd00::1]:7420'] });
    expect(decodeReadChunk(standIn)).toEqual({ ...q, standInFor: ['10.0.0.5:7420', '[fd00::1]:7420'] });
    // The same layout as before up to the flags, then the report.
    expect(standIn.readUInt32LE(plain.length - 4)).toBe(READ_STAND_IN);
    expect(standIn.subarray(plain.length).toString('hex')).toBe(
      `02${new MetaWriter().str('10.0.0.5:7420').str('[fd00::1]:7420').bytes().toString('hex')}`,
    );
    const flagsAt = plain.length - 4;
    const withFlags = (flags: number, tail: number[]) => {
      const b = Buffer.concat([plain, Buffer.from(tail)]);
      b.writeUInt32LE(flags, flagsAt);
      return b;
    };
    expect(() => decodeReadChunk(withFlags(READ_STAND_IN, [0]))).toThrow(/stand-in report of 0 members/);
    expect(() => decodeReadChunk(withFlags(READ_STAND_IN, [MAX_STAND_IN_REPORT + 1]))).toThrow(/17 members/);
    expect(() => decodeReadChunk(withFlags(READ_STAND_IN | READ_LOCAL_ONLY, [1, 1, 0, 0x61]))).toThrow(
      /LOCAL_ONLY and STAND_IN/,
    );
    expect(() => decodeReadChunk(withFlags(READ_STAND_IN, [2, 1, 0, 0x61]))).toThrow(MetaError); // one of two
    expect(() => decodeReadChunk(withFlags(4, []))).toThrow(/unknown READ_CHUNK flags 4/);
    expect(() => encodeReadChunk({ ...q, standInFor: [] })).toThrow(/1\.\.16/);
    expect(() => encodeReadChunk({ ...q, standInFor: ['a:1'], localOnly: true })).toThrow(/LOCAL_ONLY/);
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
