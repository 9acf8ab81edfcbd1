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
  // HTTP-level refusals of a request before it is routed (src/http/target.ts, client-errors.ts)
  'URI_TOO_LONG',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  // the origin's failures
  'ORIGIN_UNAVAILABLE',
  'ORIGIN_TIMEOUT',
  'ORIGIN_BAD_RESPONSE',
  'VERSION_CHANGED',
  'UNSUPPORTED',
  // ours
  'CHECKSUM_MISMATCH',
  'TIER_IO',
  // a local disk has no room left (the disk `weightcache pull` writes a model to)
  'DISK_FULL',
  'OVERLOADED',
  'SHUTTING_DOWN',
  // a cluster member this request needs (a name's home, a chunk's owner; for the CLI, the node
  // it talks to) could not be reached, answered in part, or did not confirm: retry
  'PEER_UNAVAILABLE',
  'CONFIG_INVALID',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

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

  /**
   * The one way back from a code that crossed a wire (a node's JSON error
   * body, a transport ERROR frame, a prefetch job's error) to a CacheError: a
   * code this build knows is kept; any other becomes `fallback`, its text kept
   * in the message so nothing the far side said is lost.
   */
  static fromWire(code: unknown, message: string, fallback: ErrorCode = 'INTERNAL'): CacheError {
    if (isErrorCode(code)) return new CacheError(code, message);
    const said = typeof code === 'string' && code !== '' ? `${code.slice(0, 64)}: ` : '';
    return new CacheError(fallback, `${said}${message}`);
  }

  /** Wraps anything thrown into a CacheError, keeping CacheErrors as they are. */
  static from(err: unknown, fallback: ErrorCode = 'INTERNAL'): CacheError {
    if (err instanceof CacheError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new CacheError(fallback, message, { cause: err });
  }
}
