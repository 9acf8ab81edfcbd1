/** Deterministic chunk bytes shared by the test server fixture and the tests that check what arrived. */
import type { ChunkName } from '../../src/chunk/name.js';

const SIZE = 16 * 1024 * 1024 + 4096;
const base = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i++) base[i] = (i * 31 + (i >>> 11)) & 0xff;

/** Bytes [offset, offset+length) of chunk `name`: a window into one pattern, shifted by the index. */
export function chunkBytes(name: Pick<ChunkName, 'index'>, offset: number, length: number): Buffer {
  const start = (name.index % 4096) + offset;
  return base.subarray(start, start + length);
}

/** Chunk `index` (a full one) of an object made of index + 1 chunks of `chunkSize` bytes. */
export function testChunk(key: string, index = 0, chunkSize = 4 * 1024 * 1024): ChunkName {
  return {
    originId: 'test',
    container: 'c',
    key,
    etag: 'v1',
    size: chunkSize * (index + 1),
    chunkSize,
    index,
  };
}
