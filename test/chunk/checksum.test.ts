import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/chunk/checksum.js';
import { binding } from '../../src/transport/binding.js';

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('hardware and portable implementations agree, and chaining equals one pass', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(4096), (bytes, cut) => {
        const at = Math.min(cut, bytes.length);
        const whole = crc32c(bytes);
        expect(binding().crc32cPortable(bytes)).toBe(whole);
        expect(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at)))).toBe(whole);
      }),
    );
  });

  it('rejects non-bytes with a message naming the argument', () => {
    expect(() => binding().crc32c('nope' as unknown as Uint8Array)).toThrow(/data must be a Uint8Array/);
  });
});
