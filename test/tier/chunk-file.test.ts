import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { chunkKey, objectId } from '../../src/chunk/name.js';
import {
  CHUNK_MAGIC,
  chunkFileName,
  DATA_ALIGN_BYTES,
  dataOffsetFor,
  decodeChunkHeader,
  decodeChunkHeaderV1,
  encodeChunkHeader,
  HEADER_GUESS_BYTES,
  MAX_DATA_BYTES,
  MAX_KEY_BYTES,
  V1_FIXED_HEADER_BYTES,
  V1_MAX_DATA_OFFSET,
} from '../../src/tier/chunk-file.js';
import { binding } from '../../src/transport/binding.js';
import { encodeChunkHeaderV1 } from './fixtures/chunk-file-v1.js';

const NAME = {
  originId: 'o',
  container: 'models',
  key: 'llama/model-00001.safetensors',
  etag: '"0x8DC"',
  size: 123456789,
  chunkSize: 4194304,
  index: 7,
};
const KEY = chunkKey(NAME);

function keyWith(name: string, index = 0): string {
  return chunkKey({ ...NAME, key: name, index });
}

/** Rewrites the v2 header CRC after a deliberate edit, to reach the checks behind it. */
function resealed(buf: Buffer): Buffer {
  const keyLength = buf.readUInt32LE(12);
  const blocks = buf.readUInt32LE(32);
  const crc = crc32c(buf.subarray(64, 64 + keyLength + 4 * blocks), crc32c(buf.subarray(0, 60)));
  buf.writeUInt32LE(crc >>> 0, 60);
  return buf;
}

describe('chunk file names', () => {
  it('are the object id and index, fanned out by (first id byte + index) mod 256', () => {
    const n = chunkFileName(KEY)!;
    const oid = objectId(NAME.originId, NAME, NAME.chunkSize);
    expect(n.objectId.equals(oid)).toBe(true);
    expect(n.index).toBe(7);
    expect(n.name).toBe(`${oid.toString('hex')}-7`);
    expect(n.subdir).toBe(((oid[0]! + 7) & 0xff).toString(16).padStart(2, '0'));
    // Consecutive chunks of one object land in consecutive directories.
    const dirs = new Set(Array.from({ length: 256 }, (_, i) => chunkFileName(keyWith('big', i))!.subdir));
    expect(dirs.size).toBe(256);
  });

  it('are undefined for strings that are not chunk keys', () => {
    for (const bad of ['', 'k', '[]', '{"a":1}', JSON.stringify(['o', 'c', 'k', 'e', 1, 2, -1])])
      expect(chunkFileName(bad), bad).toBeUndefined();
    expect(chunkFileName(JSON.stringify(['o', 'c', 'k', 'e', 1, 2, 2 ** 32]))).toBeUndefined();
    expect(chunkFileName(JSON.stringify(['o', 'c', 'k', 'e', '1', 2, 3]))).toBeUndefined();
  });
});

describe('chunk file header, version 2', () => {
  it('round-trips key, object id, index and lengths; the data CRC is the block CRCs combined', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }),
        fc.nat(100_000),
        fc.constantFrom(4096, 8192, 65536),
        fc.nat(2 ** 31),
        (name, len, blockBytes, index) => {
          const key = keyWith(name, index);
          fc.pre(Buffer.byteLength(key) <= MAX_KEY_BYTES);
          const data = randomBytes(len);
          const { header, dataCrc } = encodeChunkHeader(key, data, blockBytes);
          expect(dataCrc).toBe(crc32c(data));
          expect(header.length % DATA_ALIGN_BYTES).toBe(0);
          expect(header.length).toBe(dataOffsetFor(key, len, blockBytes));
          const got = decodeChunkHeader(header);
          expect(got).toEqual({
            ok: true,
            header: {
              key,
              objectId: chunkFileName(key)!.objectId,
              index,
              dataOffset: header.length,
              dataLength: len,
              dataCrc32c: dataCrc,
              blockBytes,
              blockCount: Math.ceil(len / blockBytes),
            },
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('holds one CRC32C per 4 KiB block, in order, after the key', () => {
    const data = randomBytes(3 * 4096 + 100);
    const { header } = encodeChunkHeader(KEY, data);
    const table = 64 + Buffer.byteLength(KEY);
    for (let i = 0; i < 4; i++)
      expect(header.readUInt32LE(table + 4 * i)).toBe(crc32c(data.subarray(i * 4096, (i + 1) * 4096)));
  });

  it('starts the data at 8 KiB for a 4 MiB chunk with an ordinary key', () => {
    const { header } = encodeChunkHeader(KEY, Buffer.alloc(4 << 20));
    expect(header.length).toBe(HEADER_GUESS_BYTES);
    expect(encodeChunkHeader(KEY, Buffer.alloc(1000)).header.length).toBe(4096);
  });

  it('rejects a wrong magic, an unknown version, a short buffer', () => {
    const { header: good } = encodeChunkHeader(KEY, Buffer.alloc(10));
    const magic = Buffer.from(good);
    magic[0] = 0x58;
    expect(decodeChunkHeader(magic)).toMatchObject({ ok: false, reason: 'magic' });
    const version = Buffer.from(good);
    version.writeUInt16LE(3, 8);
    expect(decodeChunkHeader(resealed(version))).toMatchObject({ ok: false, reason: 'version' });
    expect(decodeChunkHeader(good.subarray(0, 63))).toMatchObject({ ok: false, reason: 'truncated' });
    expect(decodeChunkHeader(Buffer.alloc(0))).toMatchObject({ ok: false, reason: 'truncated' });
    // Past the fixed part: it says how long the whole header is.
    expect(decodeChunkHeader(good.subarray(0, 100))).toEqual({
      ok: false,
      reason: 'truncated',
      checksum: false,
      dataOffset: 4096,
    });
  });

  it('rejects a key length of 0 or past 4 KiB, and inconsistent lengths, before reading further', () => {
    const { header } = encodeChunkHeader(KEY, Buffer.alloc(10));
    const zero = Buffer.from(header);
    zero.writeUInt32LE(0, 12);
    expect(decodeChunkHeader(zero)).toMatchObject({ ok: false, reason: 'key-length' });
    const long = Buffer.from(header);
    long.writeUInt32LE(MAX_KEY_BYTES + 1, 12);
    expect(decodeChunkHeader(long)).toMatchObject({ ok: false, reason: 'key-length' });
    const bigData = Buffer.from(header);
    bigData.writeBigUInt64LE(BigInt(MAX_DATA_BYTES) + 1n, 16);
    expect(decodeChunkHeader(bigData)).toMatchObject({ ok: false, reason: 'bounds' });
    const blocks = Buffer.from(header);
    blocks.writeUInt32LE(2, 32); // 10 bytes are one block
    expect(decodeChunkHeader(blocks)).toMatchObject({ ok: false, reason: 'bounds' });
    const blockSize = Buffer.from(header);
    blockSize.writeUInt32LE(5000, 28); // not a power of two
    expect(decodeChunkHeader(blockSize)).toMatchObject({ ok: false, reason: 'bounds' });
    const offset = Buffer.from(header);
    offset.writeUInt32LE(8192, 24);
    expect(decodeChunkHeader(offset)).toMatchObject({ ok: false, reason: 'bounds' });
    expect(() => encodeChunkHeader('k', Buffer.alloc(1))).toThrow(/not a chunk key/);
    expect(() => encodeChunkHeader(KEY, Buffer.alloc(1), 1000)).toThrow(/power of two/);
  });

  it('rejects flags and a block table that does not combine to the data CRC, under a valid header CRC', () => {
    const { header } = encodeChunkHeader(KEY, randomBytes(9000));
    const flags = Buffer.from(header);
    flags.writeUInt16LE(1, 10);
    expect(decodeChunkHeader(resealed(flags))).toMatchObject({ ok: false, reason: 'bounds' });
    const table = Buffer.from(header);
    const at = 64 + Buffer.byteLength(KEY) + 4;
    table.writeUInt32LE((table.readUInt32LE(at) ^ 1) >>> 0, at); // ^ gives an int32: back to unsigned
    expect(decodeChunkHeader(resealed(table))).toMatchObject({
      ok: false,
      reason: 'block-table',
      checksum: true,
    });
  });

  it('rejects a key that is not UTF-8', () => {
    const { header } = encodeChunkHeader(KEY, Buffer.alloc(1));
    header[64 + 2] = 0xff;
    expect(decodeChunkHeader(resealed(header))).toMatchObject({ ok: false, reason: 'key-encoding' });
  });

  it('catches any changed byte in the header, key and block table', () => {
    const { header: good } = encodeChunkHeader(KEY, randomBytes(20_000));
    const headerLength = 64 + Buffer.byteLength(KEY) + 4 * 5;
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

  it('survives any bytes (the native decoder, fuzzed from here too)', () => {
    const { header: good } = encodeChunkHeader(KEY, randomBytes(5000));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 9000 }),
          fc
            .tuple(fc.nat(good.length), fc.uint8Array({ maxLength: 64 }))
            .map(([n, tail]) => Buffer.concat([good.subarray(0, n), tail])),
        ),
        (bytes) => {
          const r = binding().nvmeDecodeHeader(bytes);
          expect(typeof r.ok).toBe('boolean');
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('chunk file header, version 1 (migration only)', () => {
  it('decodes what version 1 wrote', () => {
    const buf = encodeChunkHeaderV1(KEY, 4 << 20, 0xdeadbeef);
    expect(buf.length).toBe(4096);
    expect(decodeChunkHeaderV1(buf)).toEqual({
      ok: true,
      header: { key: KEY, dataOffset: 4096, dataLength: 4 << 20, dataCrc32c: 0xdeadbeef },
    });
    expect(V1_MAX_DATA_OFFSET).toBe(8192);
  });

  it('rejects damage: any changed header byte, short buffers, v2 headers', () => {
    const good = encodeChunkHeaderV1(KEY, 10, 5);
    const headerLength = V1_FIXED_HEADER_BYTES + Buffer.byteLength(KEY);
    for (let at = 0; at < headerLength; at++) {
      const bad = Buffer.from(good);
      bad[at]! ^= 0x10;
      expect(decodeChunkHeaderV1(bad).ok, `byte ${at}`).toBe(false);
    }
    expect(decodeChunkHeaderV1(good.subarray(0, 39))).toEqual({ ok: false, reason: 'truncated' });
    expect(decodeChunkHeaderV1(encodeChunkHeader(KEY, Buffer.alloc(1)).header)).toEqual({
      ok: false,
      reason: 'version',
    });
    expect(decodeChunkHeader(good)).toMatchObject({ ok: false, reason: 'version' });
  });
});
