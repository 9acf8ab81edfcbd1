/**
 * The Azure Blob door's one error mapping: a CacheError code, or an Azure
 * protocol error the door raises itself (AuthenticationFailed, …), becomes
 * Azure's status, `x-ms-error-code` header (on every error) and XML body.
 */
import { CacheError, type ErrorCode } from '../errors/cache-error.js';
import { text } from '../s3/xml.js';

export class AzureError extends Error {
  override readonly name = 'AzureError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Readonly<Record<string, string>> = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

const FROM_CACHE: Record<ErrorCode, readonly [number, string]> = {
  BAD_REQUEST: [400, 'InvalidInput'],
  BAD_KEY: [400, 'InvalidResourceName'],
  NOT_FOUND: [404, 'BlobNotFound'],
  RANGE_NOT_SATISFIABLE: [416, 'InvalidRange'],
  PRECONDITION_FAILED: [412, 'ConditionNotMet'],
  VERSION_CHANGED: [412, 'ConditionNotMet'],
  UNAUTHORIZED: [401, 'NoAuthenticationInformation'],
  FORBIDDEN: [403, 'AuthorizationPermissionMismatch'],
  READONLY: [405, 'UnsupportedHttpVerb'],
  TOO_LARGE: [400, 'InvalidInput'],
  UNSUPPORTED: [501, 'NotImplemented'],
  ORIGIN_UNAVAILABLE: [503, 'ServerBusy'],
  ORIGIN_TIMEOUT: [503, 'ServerBusy'],
  PEER_UNAVAILABLE: [503, 'ServerBusy'],
  SHUTTING_DOWN: [503, 'ServerBusy'],
  OVERLOADED: [503, 'ServerBusy'],
  ORIGIN_BAD_RESPONSE: [500, 'InternalError'],
  CHECKSUM_MISMATCH: [500, 'InternalError'],
  TIER_IO: [500, 'InternalError'],
  DISK_FULL: [500, 'InternalError'],
  CONFIG_INVALID: [500, 'InternalError'],
  INTERNAL: [500, 'InternalError'],
  URI_TOO_LONG: [414, 'InvalidUri'],
  HEADERS_TOO_LARGE: [431, 'InvalidHeaderValue'],
  REQUEST_TIMEOUT: [408, 'OperationTimedOut'],
};

export function toAzureError(err: unknown): AzureError {
  if (err instanceof AzureError) return err;
  const e = CacheError.from(err);
  const [status, code] = FROM_CACHE[e.code];
  return new AzureError(status, code, `${e.code}: ${e.message}`);
}

/** Azure's error document: the message ends with the request id and time, as the service's do. */
export function errorXml(e: AzureError, requestId: string): string {
  const extra = Object.entries(e.extra)
    .map(([k, v]) => text(k, v))
    .join('');
  const message = `${e.message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}`;
  return `<?xml version="1.0" encoding="utf-8"?><Error>${text('Code', e.code)}${text('Message', message)}${extra}</Error>`;
}
