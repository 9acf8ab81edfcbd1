/** The bounds check every origin applies to read(name, version, offset, length). */
import { CacheError } from '../errors/cache-error.js';
import type { ObjectName, ObjectVersion } from './origin.js';

export function checkReadRange(
  name: ObjectName,
  version: ObjectVersion,
  offset: number,
  length: number,
): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CacheError('BAD_REQUEST', `read of ${name.container}/${name.key}: bad offset/length`);
  }
  if (offset + length > version.size) {
    throw new CacheError(
      'RANGE_NOT_SATISFIABLE',
      `read of ${name.container}/${name.key}: [${offset}, +${length}) is past its size ${version.size}`,
    );
  }
}
