/** The bounds check every origin applies to read(name, version, offset, length, opts). */
import { CacheError } from '../errors/cache-error.js';
import { formatName } from './names.js';
import type { ChunkReadOptions, ObjectName, ObjectVersion } from './origin.js';

export function checkReadRange(
  name: ObjectName,
  version: ObjectVersion,
  offset: number,
  length: number,
  opts?: ChunkReadOptions,
): void {
  if (opts?.into !== undefined && opts.into.length !== length) {
    throw new CacheError(
      'INTERNAL',
      `read of ${formatName(name)}: target Buffer is ${opts.into.length} bytes, not ${length}`,
    );
  }
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CacheError('BAD_REQUEST', `read of ${formatName(name)}: bad offset/length`);
  }
  if (offset + length > version.size) {
    throw new CacheError(
      'RANGE_NOT_SATISFIABLE',
      `read of ${formatName(name)}: [${offset}, +${length}) is past its size ${version.size}`,
    );
  }
}
