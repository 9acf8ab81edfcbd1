import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { binding } from '../../src/transport/binding.js';

describe('crc32c on chunk-sized inputs', () => {
  it('every implementation agrees with the portable table at every stream and fold boundary', () => {
    const b = binding();
    const sizes = [767, 768, 769, 24_575, 24_576, 24_577, 65_536, 100_003, 4 * 1024 * 1024 + 13];
    for (const n of sizes) {
      for (const misalign of [0, 1, 5]) {
        const buf = randomBytes(n + misalign).subarray(misalign);
        const want = b.crc32cWith('table', buf);
        for (const impl of b.crc32cImplementations)
          expect(b.crc32cWith(impl, buf), `${impl}: ${n} bytes at +${misalign}`).toBe(want);
        const cut = Math.floor(n / 3);
        expect(b.crc32c(buf.subarray(cut), b.crc32c(buf.subarray(0, cut)))).toBe(want);
      }
    }
  });
});
