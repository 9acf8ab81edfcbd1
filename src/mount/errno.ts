/**
 * The mount's one translation of CacheError codes to errno values: what a
 * reader of the mount sees. A missing name is ENOENT; everything the reader
 * cannot fix (origin down or slow, a version gone mid-read, a checksum
 * failure, overload) is EIO, with a log line naming the file and the cause.
 */
import { CacheError } from '../errors/cache-error.js';

export const ENOENT = 2;
export const EIO = 5;
export const E2BIG = 7;
export const EBADF = 9;
export const EMFILE = 24;
export const EINVAL = 22;
export const ENOTDIR = 20;
export const EISDIR = 21;

export function errnoOf(err: unknown): number {
  const e = CacheError.from(err);
  switch (e.code) {
    case 'NOT_FOUND':
    case 'BAD_KEY':
      return ENOENT;
    case 'TOO_LARGE':
      return E2BIG; // a listing past listing.maxFiles
    default:
      return EIO;
  }
}
