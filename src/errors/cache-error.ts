/**
 * One error type for the whole cache. `code` is stable: clients, metrics and
 * tests match on it, so codes are only ever added, never renamed. Each
 * protocol edge (HTTP, RESP, transport) translates a code to its own status
 * in exactly one place.
 */
export const ERROR_CODES = [
  // the caller's mistakes
  'BAD_REQUEST',
  'BAD_KEY',
  'NOT_FOUND',
  'RANGE_NOT_SATISFIABLE',
  'PRECONDITION_FAILED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'READONLY',
  'TOO_LARGE',
  // the origin's failures
  'ORIGIN_UNAVAILABLE',
  'ORIGIN_TIMEOUT',
  'ORIGIN_BAD_RESPONSE',
  'VERSION_CHANGED',
  'UNSUPPORTED',
  // ours
  'CHECKSUM_MISMATCH',
  'TIER_IO',
  'OVERLOADED',
  'SHUTTING_DOWN',
  // a cluster member this request needs (a name's home) could not be reached or confirm: retry
  'PEER_UNAVAILABLE',
  'CONFIG_INVALID',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class CacheError extends Error {
  override readonly name = 'CacheError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static is(err: unknown, code?: ErrorCode): err is CacheError {
    return err instanceof CacheError && (code === undefined || err.code === code);
  }

  /** Wraps anything thrown into a CacheError, keeping CacheErrors as they are. */
  static from(err: unknown, fallback: ErrorCode = 'INTERNAL'): CacheError {
    if (err instanceof CacheError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new CacheError(fallback, message, { cause: err });
  }
}
