import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { binding } from '../../src/transport/binding.js';

const b = binding();

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    for (const impl of b.crc32cImplementations)
      expect(b.crc32cWith(impl, Buffer.from('123456789')), impl).toBe(0xe3069283);
  });

  it('picks the fastest implementation the CPU has, and lists the table one always', () => {
    expect(b.crc32cImplementations[0]).toBe('table');
    expect(b.crc32cImplementations.at(-1)).toBe(b.crc32cImplementation);
  });

  it('every implementation agrees with the table at every length 0..2100 and every alignment 0..63', () => {
    // Covers each path's size thresholds and tails: SSE4.2's 3 x 256 and 3 x 8192
    // streams start at 768 and 24576 (tested in test/transport/crc32c-large),
    // AVX-512's folding at 512, its 256-byte main loop, 64- and 16-byte tails.
    const buf = randomBytes(2100 + 64);
    for (let len = 0; len <= 2100; len += len < 600 ? 1 : 7) {
      for (let align = 0; align < 64; align += len < 600 ? 13 : 1) {
        const data = buf.subarray(align, align + len);
        const seed = (len * 2654435761) >>> 0;
        const want = b.crc32cWith('table', data, seed);
        for (const impl of b.crc32cImplementations)
          if (b.crc32cWith(impl, data, seed) !== want)
            expect.fail(`${impl} differs from table at length ${len}, alignment ${align}`);
      }
    }
  });

  it('every implementation agrees on random inputs, and chaining equals one pass', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 70_000 }),
        fc.nat(70_000),
        fc.nat(63),
        fc.nat(),
        (bytes, cut, align, seed) => {
          const buf = Buffer.alloc(bytes.length + align);
          buf.set(bytes, align);
          const data = buf.subarray(align);
          const whole = b.crc32cWith('table', data, seed);
          for (const impl of b.crc32cImplementations) expect(b.crc32cWith(impl, data, seed)).toBe(whole);
          const at = Math.min(cut, data.length);
          expect(crc32c(data.subarray(at), crc32c(data.subarray(0, at), seed))).toBe(whole);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('combine derives CRC32C(A || B) from the two CRCs and the length of B', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), fc.uint8Array({ maxLength: 20_000 }), (x, y) => {
        const ab = Buffer.concat([x, y]);
        expect(b.crc32cCombine(crc32c(x), crc32c(y), y.length)).toBe(crc32c(ab));
      }),
      { numRuns: 200 },
    );
    expect(b.crc32cCombine(0x12345678, 0, 0)).toBe(0x12345678); // B empty
    // Chunk-sized: 1024 blocks of 4 KiB combined one by one, as a chunk file's block table is.
    const chunk = randomBytes(4 * 1024 * 1024 + 123);
    let acc = 0;
    for (let at = 0; at < chunk.length; at += 4096) {
      const block = chunk.subarray(at, at + 4096);
      acc = at === 0 ? crc32c(block) : b.crc32cCombine(acc, crc32c(block), block.length);
    }
    expect(acc).toBe(crc32c(chunk));
  });

  it('rejects non-bytes and unknown implementations with a message naming them', () => {
    expect(() => b.crc32c('nope' as unknown as Uint8Array)).toThrow(/data must be a Uint8Array/);
    expect(() => b.crc32cWith('md5', Buffer.alloc(1))).toThrow(/unknown implementation md5/);
  });
});
