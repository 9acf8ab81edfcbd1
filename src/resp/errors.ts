/**
 * The one place CacheError codes become RESP error lines. The first word of
 * a RESP error is its code (clients dispatch on it): where Redis has a word
 * for the case we use it (ERR, READONLY, NOAUTH, NOPERM, BUSY), elsewhere
 * our own stable code, the same one HTTP puts in its JSON body.
 */
import type { ErrorCode } from '../errors/cache-error.js';

const PREFIX: Record<ErrorCode, string> = {
  BAD_REQUEST: 'ERR',
  BAD_KEY: 'ERR',
  NOT_FOUND: 'ERR',
  RANGE_NOT_SATISFIABLE: 'ERR',
  PRECONDITION_FAILED: 'VERSION_CHANGED',
  UNAUTHORIZED: 'NOAUTH',
  FORBIDDEN: 'NOPERM',
  READONLY: 'READONLY',
  TOO_LARGE: 'ERR',
  URI_TOO_LONG: 'ERR',
  HEADERS_TOO_LARGE: 'ERR',
  REQUEST_TIMEOUT: 'ERR',
  ORIGIN_UNAVAILABLE: 'ORIGIN_UNAVAILABLE',
  ORIGIN_TIMEOUT: 'ORIGIN_TIMEOUT',
  ORIGIN_BAD_RESPONSE: 'ORIGIN_BAD_RESPONSE',
  VERSION_CHANGED: 'VERSION_CHANGED',
  UNSUPPORTED: 'ERR',
  CHECKSUM_MISMATCH: 'CHECKSUM_MISMATCH',
  TIER_IO: 'TIER_IO',
  DISK_FULL: 'DISK_FULL',
  OVERLOADED: 'BUSY',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  PEER_UNAVAILABLE: 'TRYAGAIN',
  CONFIG_INVALID: 'ERR',
  INTERNAL: 'ERR',
};

/** The error line (without '-' and CRLF) for a cache error. */
export function respErrorOf(code: ErrorCode, message: string): string {
  return `${PREFIX[code]} ${message}`;
}

const CLIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'BAD_REQUEST',
  'BAD_KEY',
  'NOT_FOUND',
  'RANGE_NOT_SATISFIABLE',
  'PRECONDITION_FAILED',
  'VERSION_CHANGED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'READONLY',
  'TOO_LARGE',
]);

/** Whether the error is the caller's mistake (the requests metric's result label). */
export function isClientError(code: ErrorCode): boolean {
  return CLIENT_CODES.has(code);
}

/** Redis's wording for the write commands this read-only door refuses. */
export const READONLY_MESSAGE = "You can't write against a read only replica.";
