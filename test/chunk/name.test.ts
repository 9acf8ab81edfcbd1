import { describe, expect, it } from 'vitest';
import { OBJECT_ID_BYTES, objectId } from '../../src/chunk/name.js';

const v = { container: 'models', key: 'llama/model.safetensors', etag: '"0x1"', size: 10 * 1024 * 1024 };

describe('objectId', () => {
  it('is 16 bytes, stable for one version, and differs when any part of the identity differs', () => {
    const id = objectId('fs:/o', v, 4 << 20);
    expect(id.length).toBe(OBJECT_ID_BYTES);
    // A fixed vector: native code and later releases must derive the same id.
    expect(id.toString('hex')).toBe('1e9651d81928384d02752b9c3e85d4fa');
    const others = [
      objectId('fs:/p', v, 4 << 20),
      objectId('fs:/o', { ...v, container: 'models2' }, 4 << 20),
      objectId('fs:/o', { ...v, key: 'llama/model.safetensorz' }, 4 << 20),
      objectId('fs:/o', { ...v, etag: '"0x2"' }, 4 << 20),
      objectId('fs:/o', { ...v, size: v.size + 1 }, 4 << 20),
      objectId('fs:/o', v, 8 << 20),
    ].map((b) => b.toString('hex'));
    expect(new Set([id.toString('hex'), ...others]).size).toBe(7);
  });

  it('cannot be confused by separators inside a key or etag', () => {
    const a = objectId('o', { ...v, key: 'a","b', etag: 'c' }, 1);
    const b = objectId('o', { ...v, key: 'a', etag: 'b","c' }, 1);
    expect(a.equals(b)).toBe(false);
  });
});
