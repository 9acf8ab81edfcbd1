/** The one way back from a code that crossed a wire to a CacheError. */
import { describe, expect, it } from 'vitest';
import { CacheError, ERROR_CODES, isErrorCode } from '../../src/errors/cache-error.js';

describe('CacheError.fromWire', () => {
  it('keeps every code this build knows', () => {
    for (const code of ERROR_CODES) {
      const e = CacheError.fromWire(code, 'said');
      expect([e.code, e.message]).toEqual([code, 'said']);
    }
  });

  it('turns an unknown or missing code into the fallback, keeping what the far side said', () => {
    expect(CacheError.fromWire('PEER_ON_FIRE', 'smoke')).toMatchObject({
      code: 'INTERNAL',
      message: 'PEER_ON_FIRE: smoke',
    });
    expect(CacheError.fromWire(undefined, 'a proxy page', 'PEER_UNAVAILABLE')).toMatchObject({
      code: 'PEER_UNAVAILABLE',
      message: 'a proxy page',
    });
    expect(CacheError.fromWire(42, 'x', 'BAD_REQUEST').code).toBe('BAD_REQUEST');
    expect(CacheError.fromWire('X'.repeat(1000), 'm').message.length).toBeLessThan(100);
  });

  it('isErrorCode accepts exactly the codes', () => {
    expect(isErrorCode('DISK_FULL')).toBe(true);
    expect(isErrorCode('disk_full')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode(null)).toBe(false);
  });
});
