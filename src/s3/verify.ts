/**
 * SigV4 verification of S3 requests (header and presigned-query forms),
 * mapping the access key id to one of the node's tokens and its scopes.
 *
 * An access key id is a token's public key id (src/auth/tokens.ts keyIdOf:
 * the first 20 hex digits of its SHA-256); the secret access key is the token.
 * The check is separable from the door on purpose: it needs only the method,
 * the raw path, the decoded query, the headers and the clock.
 *
 * With auth off (no token files: a loopback node) nothing is verified and any
 * credentials are served, as on every other door.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Grant, TokenSet } from '../auth/tokens.js';
import { header1, param, type RawRequest } from '../http/request.js';
import { S3Error } from './errors.js';
import {
  ALGORITHM,
  canonicalQuery,
  canonicalRequest,
  parseAmzDate,
  type Scope,
  signature,
  stringToSign,
  UNSIGNED_PAYLOAD,
  uriEncode,
} from './sigv4.js';

/** S3's own limit on a presigned URL's lifetime. */
export const MAX_PRESIGNED_EXPIRY_S = 7 * 24 * 3600;

export interface S3AuthOptions {
  /** null: auth is off, every request is served. */
  readonly tokens: TokenSet | null;
  /** How far a request's X-Amz-Date may be from our clock (S3: 15 minutes). */
  readonly maxClockSkewMs: number;
  readonly now?: () => number;
}

/** The grant of a verified request; null when auth is off. Throws S3Error otherwise. */
export function authenticate(r: RawRequest, o: S3AuthOptions): Grant | null {
  if (!o.tokens) return null;
  const now = o.now?.() ?? Date.now();
  const auth = header1(r, 'authorization');
  if (param(r, 'X-Amz-Algorithm') !== undefined) return presigned(r, o.tokens, now, o.maxClockSkewMs);
  if (auth === undefined && param(r, 'Signature') !== undefined && param(r, 'AWSAccessKeyId') !== undefined) {
    // boto3 presigns with Signature Version 2 unless told otherwise: say what to change.
    throw new S3Error(
      400,
      'InvalidRequest',
      "a Signature Version 2 presigned URL is not supported: presign with AWS4-HMAC-SHA256 (boto3: Config(signature_version='s3v4'))",
    );
  }
  if (auth === undefined) {
    throw new S3Error(
      403,
      'AccessDenied',
      'this node needs signed requests: use a token as the secret access key and its key id as the access key id',
    );
  }
  if (!auth.startsWith(`${ALGORITHM} `)) {
    throw new S3Error(400, 'InvalidRequest', 'only AWS Signature Version 4 (AWS4-HMAC-SHA256) is supported');
  }
  const fields = parseAuthorization(auth.slice(ALGORITHM.length + 1));
  const date = header1(r, 'x-amz-date') ?? '';
  const at = parseAmzDate(date);
  if (Number.isNaN(at)) {
    throw new S3Error(403, 'AccessDenied', 'the request needs an X-Amz-Date header (YYYYMMDDTHHMMSSZ)');
  }
  if (Math.abs(now - at) > o.maxClockSkewMs) {
    throw new S3Error(
      403,
      'RequestTimeTooSkewed',
      `the difference between the request time (${date}) and the server's time is too large`,
      {
        RequestTime: date,
        ServerTime: new Date(now).toISOString(),
        MaxAllowedSkewMilliseconds: String(o.maxClockSkewMs),
      },
    );
  }
  const cred = parseCredential(fields.credential, date, 'AuthorizationHeaderMalformed', 400);
  const payloadHash = header1(r, 'x-amz-content-sha256');
  if (payloadHash === undefined) {
    throw new S3Error(
      400,
      'InvalidRequest',
      'missing required header for this request: x-amz-content-sha256',
    );
  }
  const key = lookup(o.tokens, cred.accessKeyId);
  check(r, key.secret, cred.scope, date, fields.signedHeaders, r.query, payloadHash, fields.signature);
  return key.grant;
}

function presigned(r: RawRequest, tokens: TokenSet, now: number, skewMs: number): Grant {
  const bad = (m: string) => new S3Error(400, 'AuthorizationQueryParametersError', m);
  if (param(r, 'X-Amz-Algorithm') !== ALGORITHM) throw bad(`X-Amz-Algorithm must be ${ALGORITHM}`);
  const date = param(r, 'X-Amz-Date') ?? '';
  const at = parseAmzDate(date);
  if (Number.isNaN(at)) throw bad('X-Amz-Date must be YYYYMMDDTHHMMSSZ');
  const expires = Number(param(r, 'X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGNED_EXPIRY_S) {
    throw bad(`X-Amz-Expires must be a number of seconds from 1 to ${MAX_PRESIGNED_EXPIRY_S}`);
  }
  if (now > at + expires * 1000) throw new S3Error(403, 'AccessDenied', 'request has expired');
  if (at - now > skewMs)
    throw new S3Error(403, 'AccessDenied', 'request is not valid yet (X-Amz-Date is in the future)');
  const sig = param(r, 'X-Amz-Signature');
  const signedHeaders = param(r, 'X-Amz-SignedHeaders');
  if (!sig || !signedHeaders) throw bad('X-Amz-Signature and X-Amz-SignedHeaders are required');
  const cred = parseCredential(
    param(r, 'X-Amz-Credential') ?? '',
    date,
    'AuthorizationQueryParametersError',
    400,
  );
  const key = lookup(tokens, cred.accessKeyId);
  const query = r.query.filter(([k]) => k !== 'X-Amz-Signature');
  const payloadHash = param(r, 'X-Amz-Content-Sha256') ?? UNSIGNED_PAYLOAD;
  check(r, key.secret, cred.scope, date, signedHeaders.split(';'), query, payloadHash, sig);
  return key.grant;
}

function lookup(tokens: TokenSet, accessKeyId: string) {
  const key = tokens.signingKey(accessKeyId);
  if (!key) {
    throw new S3Error(
      403,
      'InvalidAccessKeyId',
      'the access key id is not the key id of any token of this node (printf %s "$TOKEN" | sha256sum | cut -c1-20)',
    );
  }
  return key;
}

/** Recomputes the signature; the path is tried as sent, then re-encoded the way S3 encodes keys. */
function check(
  r: RawRequest,
  secret: string,
  scope: Scope,
  date: string,
  signedHeaders: readonly string[],
  query: ReadonlyArray<readonly [string, string]>,
  payloadHash: string,
  given: string,
): void {
  const names = [...signedHeaders].map((n) => n.toLowerCase());
  if (!names.includes('host')) {
    throw new S3Error(400, 'AuthorizationHeaderMalformed', 'the signed headers must include host');
  }
  const headers = names.map((n) => [n, r.header(n)] as const);
  const cq = canonicalQuery(query);
  const uris = new Set([r.path, reencode(r.path)]);
  const want = Buffer.from(given, 'utf8');
  let ok = false;
  for (const uri of uris) {
    const creq = canonicalRequest({ method: r.method, uri, query: cq, headers, payloadHash });
    const sig = Buffer.from(signature(secret, scope, stringToSign(date, scope, creq)), 'utf8');
    // Constant time: a timing difference must not reveal how much of a signature was right.
    if (sig.length === want.length && timingSafeEqual(sig, want)) ok = true;
  }
  if (!ok) {
    throw new S3Error(
      403,
      'SignatureDoesNotMatch',
      'the request signature we calculated does not match the signature you provided; check the secret access key (the token) and the signing method',
    );
  }
}

/** The path decoded and encoded again with SigV4's rule, for clients that encode less than S3 does. */
function reencode(path: string): string {
  try {
    return path
      .split('/')
      .map((s) => uriEncode(decodeURIComponent(s)))
      .join('/');
  } catch {
    return path;
  }
}

interface AuthFields {
  readonly credential: string;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

function parseAuthorization(rest: string): AuthFields {
  const fields = new Map<string, string>();
  for (const part of rest.split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signed = fields.get('SignedHeaders');
  const sig = fields.get('Signature');
  if (!credential || !signed || !sig) {
    throw new S3Error(
      400,
      'AuthorizationHeaderMalformed',
      'the Authorization header needs Credential=, SignedHeaders= and Signature=',
    );
  }
  return { credential, signedHeaders: signed.split(';'), signature: sig };
}

function parseCredential(
  credential: string,
  date: string,
  code: string,
  status: number,
): { accessKeyId: string; scope: Scope } {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || parts[3] !== 's3') {
    throw new S3Error(status, code, 'the credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/s3/aws4_request');
  }
  const [accessKeyId = '', scopeDate = '', region = ''] = parts;
  if (scopeDate !== date.slice(0, 8)) {
    throw new S3Error(
      status,
      code,
      `the credential's date ${scopeDate} is not the request's date ${date.slice(0, 8)}`,
    );
  }
  return { accessKeyId, scope: { date: scopeDate, region, service: 's3' } };
}
