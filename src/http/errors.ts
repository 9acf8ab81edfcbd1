/**
 * The one place CacheError codes become HTTP statuses. 4xx for the caller's
 * mistakes, 502/503/504 for the origin's and for overload.
 */
import type { ErrorCode } from '../errors/cache-error.js';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_KEY: 400,
  NOT_FOUND: 404,
  RANGE_NOT_SATISFIABLE: 416,
  PRECONDITION_FAILED: 412,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  READONLY: 405,
  TOO_LARGE: 413,
  ORIGIN_UNAVAILABLE: 502,
  ORIGIN_TIMEOUT: 504,
  ORIGIN_BAD_RESPONSE: 502,
  VERSION_CHANGED: 412,
  UNSUPPORTED: 501,
  CHECKSUM_MISMATCH: 502,
  TIER_IO: 500,
  OVERLOADED: 503,
  SHUTTING_DOWN: 503,
  PEER_UNAVAILABLE: 503,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
};

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** The error body every endpoint answers: `{ code, message }`. */
export function errorBody(code: ErrorCode, message: string): string {
  return JSON.stringify({ code, message });
}
