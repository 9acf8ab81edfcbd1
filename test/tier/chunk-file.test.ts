import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import {
  CHUNK_MAGIC,
  DATA_ALIGN_BYTES,
  decodeChunkHeader,
  encodeChunkHeader,
  FIXED_HEADER_BYTES,
  MAX_DATA_BYTES,
  MAX_DATA_OFFSET,
  MAX_KEY_BYTES,
} from '../../src/tier/chunk-file.js';

const KEY = JSON.stringify([
  'o',
  'models',
  'llama/model-00001.safetensors',
  '"0x8DC"',
  123456789,
  4194304,
  7,
]);

/** Rewrites the header CRC after a deliberate edit, to reach the checks behind it. */
function resealed(buf: Buffer): Buffer {
  const keyLength = buf.readUInt32LE(20);
  const crc = crc32c(
    buf.subarray(FIXED_HEADER_BYTES, FIXED_HEADER_BYTES + keyLength),
    crc32c(buf.subarray(0, 36)),
  );
  buf.writeUInt32LE(crc >>> 0, 36);
  return buf;
}

describe('chunk file header', () => {
  it('round-trips key, lengths and crc, with the data aligned to 4 KiB', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1000 }),
        fc.nat(MAX_DATA_BYTES),
        fc.nat(0xffffffff),
        (key, len, crc) => {
          fc.pre(Buffer.byteLength(key) <= MAX_KEY_BYTES);
          const buf = encodeChunkHeader(key, len, crc);
          expect(buf.length % DATA_ALIGN_BYTES).toBe(0);
          expect(buf.length).toBeGreaterThanOrEqual(FIXED_HEADER_BYTES + Buffer.byteLength(key));
          expect(decodeChunkHeader(buf)).toEqual({
            ok: true,
            header: { key, dataOffset: buf.length, dataLength: len, dataCrc32c: crc },
          });
        },
      ),
    );
  });

  it('starts the data at 4096 for ordinary keys and never past MAX_DATA_OFFSET', () => {
    expect(encodeChunkHeader(KEY, 4 << 20, 1).length).toBe(4096);
    expect(encodeChunkHeader('k'.repeat(MAX_KEY_BYTES), 1, 1).length).toBe(MAX_DATA_OFFSET);
  });

  it('rejects a wrong magic, an unknown version, a short buffer', () => {
    const good = encodeChunkHeader(KEY, 10, 5);
    const magic = Buffer.from(good);
    magic[0] = 0x58;
    expect(decodeChunkHeader(magic)).toEqual({ ok: false, reason: 'magic' });
    const version = Buffer.from(good);
    version.writeUInt16LE(2, 8);
    expect(decodeChunkHeader(resealed(version))).toEqual({ ok: false, reason: 'version' });
    expect(decodeChunkHeader(good.subarray(0, 39))).toEqual({ ok: false, reason: 'truncated' });
    expect(decodeChunkHeader(good.subarray(0, 60))).toEqual({ ok: false, reason: 'truncated' });
    expect(decodeChunkHeader(Buffer.alloc(0))).toEqual({ ok: false, reason: 'truncated' });
  });

  it('rejects a key length of 0 or past 4 KiB before reading it', () => {
    const zero = encodeChunkHeader(KEY, 10, 5);
    zero.writeUInt32LE(0, 20);
    expect(decodeChunkHeader(zero)).toEqual({ ok: false, reason: 'key-length' });
    const long = Buffer.alloc(MAX_DATA_OFFSET + 4096);
    encodeChunkHeader(KEY, 10, 5).copy(long);
    long.writeUInt32LE(MAX_KEY_BYTES + 1, 20);
    expect(decodeChunkHeader(long)).toEqual({ ok: false, reason: 'key-length' });
    expect(() => encodeChunkHeader('', 1, 0)).toThrow(RangeError);
  });

  it('rejects lengths out of bounds even under a valid header crc', () => {
    const big = encodeChunkHeader(KEY, 10, 5);
    big.writeBigUInt64LE(BigInt(MAX_DATA_BYTES) + 1n, 24);
    expect(decodeChunkHeader(resealed(big))).toEqual({ ok: false, reason: 'bounds' });
    const offset = encodeChunkHeader(KEY, 10, 5);
    offset.writeUInt32LE(8192, 16);
    expect(decodeChunkHeader(resealed(offset))).toEqual({ ok: false, reason: 'bounds' });
    expect(() => encodeChunkHeader(KEY, MAX_DATA_BYTES + 1, 0)).toThrow(RangeError);
  });

  it('rejects a key that is not UTF-8', () => {
    const buf = encodeChunkHeader('abcd', 1, 1);
    buf[FIXED_HEADER_BYTES] = 0xff;
    expect(decodeChunkHeader(resealed(buf))).toEqual({ ok: false, reason: 'key-encoding' });
  });

  it('catches any changed byte in the header', () => {
    const good = encodeChunkHeader(KEY, 4 << 20, 0xdeadbeef);
    const headerLength = FIXED_HEADER_BYTES + Buffer.byteLength(KEY);
    fc.assert(
      fc.property(fc.nat(headerLength - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Buffer.from(good);
        bad[at]! ^= xor;
        expect(decodeChunkHeader(bad).ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
    expect(CHUNK_MAGIC.toString('latin1')).toBe('WCCHUNK\0');
  });
});
