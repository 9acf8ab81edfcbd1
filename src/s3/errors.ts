/**
 * The S3 door's one error mapping: a CacheError code, or an S3 protocol
 * error the door raises itself (a bad signature, a write), becomes S3's
 * status and XML error body. Messages keep the cache's code in front, so a
 * 503 still says whether the origin timed out or refused.
 */
import { CacheError, type ErrorCode } from '../errors/cache-error.js';
import { escapeXml, text, XML_DECLARATION } from './xml.js';

/** An error in S3's own terms, raised by the door (SignatureDoesNotMatch, NotImplemented, …). */
export class S3Error extends Error {
  override readonly name = 'S3Error';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const FROM_CACHE: Record<ErrorCode, readonly [number, string]> = {
  BAD_REQUEST: [400, 'InvalidRequest'],
  BAD_KEY: [400, 'InvalidArgument'],
  NOT_FOUND: [404, 'NoSuchKey'],
  RANGE_NOT_SATISFIABLE: [416, 'InvalidRange'],
  PRECONDITION_FAILED: [412, 'PreconditionFailed'],
  VERSION_CHANGED: [412, 'PreconditionFailed'],
  UNAUTHORIZED: [403, 'AccessDenied'],
  FORBIDDEN: [403, 'AccessDenied'],
  READONLY: [501, 'NotImplemented'],
  TOO_LARGE: [400, 'InvalidRequest'],
  UNSUPPORTED: [501, 'NotImplemented'],
  ORIGIN_UNAVAILABLE: [503, 'ServiceUnavailable'],
  ORIGIN_TIMEOUT: [503, 'ServiceUnavailable'],
  PEER_UNAVAILABLE: [503, 'ServiceUnavailable'],
  SHUTTING_DOWN: [503, 'ServiceUnavailable'],
  OVERLOADED: [503, 'SlowDown'],
  ORIGIN_BAD_RESPONSE: [500, 'InternalError'],
  CHECKSUM_MISMATCH: [500, 'InternalError'],
  TIER_IO: [500, 'InternalError'],
  DISK_FULL: [500, 'InternalError'],
  CONFIG_INVALID: [500, 'InternalError'],
  INTERNAL: [500, 'InternalError'],
  URI_TOO_LONG: [414, 'InvalidURI'],
  HEADERS_TOO_LARGE: [400, 'RequestHeaderSectionTooLarge'],
  REQUEST_TIMEOUT: [400, 'RequestTimeout'],
};

/** Anything thrown → S3's terms. */
export function toS3Error(err: unknown): S3Error {
  if (err instanceof S3Error) return err;
  const e = CacheError.from(err);
  const [status, code] = FROM_CACHE[e.code];
  return new S3Error(status, code, `${e.code}: ${e.message}`);
}

/** S3's error document. */
export function errorXml(e: S3Error, resource: string, requestId: string): string {
  const extra = Object.entries(e.extra)
    .map(([k, v]) => text(k, v))
    .join('');
  return (
    `${XML_DECLARATION}<Error>${text('Code', e.code)}${text('Message', e.message)}${extra}` +
    `<Resource>${escapeXml(resource)}</Resource>${text('RequestId', requestId)}</Error>`
  );
}
