/**
 * A read must lie inside its chunk. Checked on both ends: the client fails
 * fast without a round trip, the server rejects it at the door so no handler
 * ever sees an impossible range.
 */
import { type ChunkName, chunkCount, chunkExtent } from '../chunk/name.js';
import { CacheError } from '../errors/cache-error.js';

export function checkRange(name: ChunkName, offset: number, length: number): void {
  const ints = [name.size, name.chunkSize, name.index, offset, length];
  if (!ints.every((v) => Number.isSafeInteger(v) && v >= 0) || name.chunkSize === 0) {
    throw new CacheError(
      'BAD_REQUEST',
      `bad chunk read: size, chunkSize, index, offset and length must be integers ≥ 0`,
    );
  }
  if (name.index >= chunkCount(name.size, name.chunkSize)) {
    throw new CacheError(
      'RANGE_NOT_SATISFIABLE',
      `chunk ${name.index} does not exist in an object of ${name.size} bytes (chunkSize ${name.chunkSize})`,
    );
  }
  const extent = chunkExtent(name.size, name.chunkSize, name.index).length;
  if (offset + length > extent) {
    throw new CacheError(
      'RANGE_NOT_SATISFIABLE',
      `read ${offset}+${length} exceeds chunk ${name.index}, which has ${extent} bytes`,
    );
  }
}
