/**
 * AWS Signature Version 4, the one implementation weightcache has: the S3
 * door verifies requests with it (src/s3/verify.ts) and the S3 origin signs
 * its requests with it (src/origin/s3.ts). Checked against AWS's published
 * test vectors (test/s3/sigv4.test.ts).
 *
 *   canonical request = METHOD \n URI \n QUERY \n HEADERS \n SIGNED-HEADERS \n PAYLOAD-HASH
 *   string to sign    = AWS4-HMAC-SHA256 \n DATE-TIME \n SCOPE \n hex(SHA-256(canonical request))
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * S3 differs from other services in one way that matters here: the canonical
 * URI is the path as sent (each segment URI-encoded once, never normalised).
 */
import { createHash, createHmac } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export interface Scope {
  /** YYYYMMDD */
  readonly date: string;
  readonly region: string;
  readonly service: string;
}

export function scopeString(s: Scope): string {
  return `${s.date}/${s.region}/${s.service}/aws4_request`;
}

/**
 * RFC 3986 encoding as SigV4 prescribes: every byte but A-Z a-z 0-9 - . _ ~
 * as %XX (upper-case hex); '/' kept when `keepSlash` (object key paths).
 */
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Query parameters (decoded pairs) as SigV4's canonical query string: encoded, sorted by key then value. */
export function canonicalQuery(pairs: ReadonlyArray<readonly [string, string]>): string {
  return pairs
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** A header value as signed: trimmed, runs of spaces collapsed; several values joined by ','. */
export function canonicalHeaderValue(values: readonly string[]): string {
  return values.map((v) => v.trim().replace(/ {2,}/g, ' ')).join(',');
}

export interface CanonicalRequest {
  readonly method: string;
  /** The encoded path, as on the wire for S3. */
  readonly uri: string;
  /** The canonical query string (see canonicalQuery). */
  readonly query: string;
  /** Lower-case names, sorted, each with its values in the order received. */
  readonly headers: ReadonlyArray<readonly [string, readonly string[]]>;
  readonly payloadHash: string;
}

export function canonicalRequest(r: CanonicalRequest): string {
  const headerLines = r.headers.map(([n, v]) => `${n}:${canonicalHeaderValue(v)}\n`).join('');
  const signed = r.headers.map(([n]) => n).join(';');
  return `${r.method}\n${r.uri}\n${r.query}\n${headerLines}\n${signed}\n${r.payloadHash}`;
}

export function stringToSign(amzDate: string, scope: Scope, canonical: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scopeString(scope)}\n${sha256Hex(canonical)}`;
}

/** Signing keys are valid for one day, region and service: cache a few (the verifier derives one per request otherwise). */
const keyCache = new Map<string, Buffer>();
const KEY_CACHE_MAX = 1024;

export function signingKey(secret: string, scope: Scope): Buffer {
  const id = `${scope.date}\0${scope.region}\0${scope.service}\0${secret}`;
  const cached = keyCache.get(id);
  if (cached) return cached;
  const kDate = hmac(`AWS4${secret}`, scope.date);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  const key = hmac(kService, 'aws4_request');
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(id, key);
  return key;
}

export function signature(secret: string, scope: Scope, toSign: string): string {
  return createHmac('sha256', signingKey(secret, scope)).update(toSign).digest('hex');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `Date` → SigV4's basic ISO 8601 form, `20130524T000000Z`. */
export function amzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** SigV4's `20130524T000000Z` → epoch ms, or NaN. */
export function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, se);
}

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
}

export interface SignInput {
  readonly method: string;
  /** `host[:port]` as the Host header will carry it. */
  readonly host: string;
  /** The encoded path. */
  readonly uri: string;
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Extra headers to sign and send (lower-case names). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly payloadHash: string;
  readonly region: string;
  readonly service: string;
  readonly credentials: Credentials;
  readonly now: Date;
}

/** The headers that sign a request (Authorization, x-amz-date, x-amz-content-sha256, the session token) plus the given ones. */
export function signedHeaders(i: SignInput): Record<string, string> {
  const date = amzDate(i.now);
  const scope: Scope = { date: date.slice(0, 8), region: i.region, service: i.service };
  const headers: Record<string, string> = {
    ...i.headers,
    host: i.host,
    'x-amz-date': date,
    'x-amz-content-sha256': i.payloadHash,
  };
  if (i.credentials.sessionToken) headers['x-amz-security-token'] = i.credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = canonicalRequest({
    method: i.method,
    uri: i.uri,
    query: canonicalQuery(i.query),
    headers: names.map((n) => [n, [headers[n]!]] as const),
    payloadHash: i.payloadHash,
  });
  const sig = signature(i.credentials.secretAccessKey, scope, stringToSign(date, scope, canonical));
  const { host: _host, ...rest } = headers;
  return {
    ...rest,
    authorization: `${ALGORITHM} Credential=${i.credentials.accessKeyId}/${scopeString(scope)}, SignedHeaders=${names.join(';')}, Signature=${sig}`,
  };
}

/** A presigned URL's query (decoded pairs, the signature last), signing only `host`. */
export function presignedQuery(i: Omit<SignInput, 'headers' | 'payloadHash'> & { expiresSeconds: number }) {
  const date = amzDate(i.now);
  const scope: Scope = { date: date.slice(0, 8), region: i.region, service: i.service };
  const query: Array<[string, string]> = [
    ...i.query.map(([k, v]) => [k, v] as [string, string]),
    ['X-Amz-Algorithm', ALGORITHM],
    ['X-Amz-Credential', `${i.credentials.accessKeyId}/${scopeString(scope)}`],
    ['X-Amz-Date', date],
    ['X-Amz-Expires', String(i.expiresSeconds)],
    ['X-Amz-SignedHeaders', 'host'],
  ];
  if (i.credentials.sessionToken) query.push(['X-Amz-Security-Token', i.credentials.sessionToken]);
  const canonical = canonicalRequest({
    method: i.method,
    uri: i.uri,
    query: canonicalQuery(query),
    headers: [['host', [i.host]]],
    payloadHash: UNSIGNED_PAYLOAD,
  });
  query.push([
    'X-Amz-Signature',
    signature(i.credentials.secretAccessKey, scope, stringToSign(date, scope, canonical)),
  ]);
  return query;
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
