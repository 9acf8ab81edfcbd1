/**
 * Azure Storage authentication of a Blob request, mapped to the node's
 * tokens: SharedKey (the Authorization header) and SAS (service SAS, `sr=b`
 * or `sr=c`, and account SAS, `ss`/`srt`, for signed versions 2020-12-06 and
 * later). The account key is a token: clients put base64(token) in the
 * connection string's AccountKey, and the HMAC key is the token's bytes.
 * Azure names no key in a signature, so each token is tried; every one is
 * computed and compared in constant time whichever matches.
 *
 * Separable from the door on purpose: it needs only the method, the raw
 * path, the decoded query, the headers, the account and the clock.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { Grant, SigningKey, TokenSet } from '../auth/tokens.js';
import { AzureError } from './errors.js';

export interface AzureRequest {
  readonly method: string;
  /** The path as received (percent-encoded), without the query. */
  readonly path: string;
  /** Query parameters, decoded. */
  readonly query: ReadonlyArray<readonly [string, string]>;
  /** Every value of a header (lower-case name). */
  header(name: string): readonly string[];
  /** Every header name received (lower-case). */
  headerNames(): readonly string[];
  /** The account named in the path. */
  readonly account: string;
  /** The container and blob name the request is about ('' when none). */
  readonly container: string;
  readonly blob: string;
  /** The TCP peer's address (what a SAS's `sip` is checked against); null: none (a unix socket). */
  readonly clientAddress: string | null;
  /** The request came over TLS (what a SAS's `spr=https` requires). */
  readonly secure: boolean;
}

/** What a request may do once authenticated. */
export type Access = 'read' | 'list';

export interface AzureAuthOptions {
  readonly tokens: TokenSet | null;
  readonly maxClockSkewMs: number;
  readonly now?: () => number;
}

/** Oldest SAS version whose string-to-sign we know. */
const MIN_SAS_VERSION = '2020-12-06';

/** The grant of a verified request; null when auth is off. Throws AzureError otherwise. */
export function authenticate(r: AzureRequest, access: Access, o: AzureAuthOptions): Grant | null {
  if (!o.tokens) return null;
  const now = o.now?.() ?? Date.now();
  const auth = first(r, 'authorization');
  if (auth?.startsWith('SharedKey '))
    return sharedKey(r, auth.slice('SharedKey '.length), o.tokens, now, o.maxClockSkewMs);
  if (auth && /^Bearer\s/i.test(auth)) {
    const grant = o.tokens.check(auth.replace(/^Bearer\s+/i, '').trim());
    if (!grant) throw failed("the bearer token is not one of this node's tokens");
    return grant;
  }
  if (param(r, 'sig') !== undefined) return sas(r, access, o.tokens, now, o.maxClockSkewMs);
  throw new AzureError(
    401,
    'NoAuthenticationInformation',
    'Server failed to authenticate the request: this node needs SharedKey (AccountKey=base64 of a token) or a SAS',
    {},
    { 'WWW-Authenticate': 'SharedKey' },
  );
}

function sharedKey(r: AzureRequest, value: string, tokens: TokenSet, now: number, skewMs: number): Grant {
  const colon = value.lastIndexOf(':');
  const account = value.slice(0, colon);
  const given = value.slice(colon + 1);
  if (colon <= 0 || account !== r.account) {
    throw failed(
      `the SharedKey account ${JSON.stringify(account)} is not the account in the path (${r.account})`,
    );
  }
  const date = first(r, 'x-ms-date') ?? first(r, 'date');
  const at = date === undefined ? Number.NaN : Date.parse(date);
  if (Number.isNaN(at)) throw failed('the request needs an x-ms-date (or Date) header');
  if (Math.abs(now - at) > skewMs) throw failed(`the request time ${date} is too far from the server's time`);
  const toSign = sharedKeyString(r);
  return match(
    tokens,
    toSign,
    given,
    `The MAC signature found in the HTTP request '${given}' is not the same as any computed signature.`,
  );
}

/** The SharedKey string-to-sign for the Blob service (versions 2015-02-21 and later). */
export function sharedKeyString(r: AzureRequest): string {
  const h = (n: string) => r.header(n).join(',');
  const length = h('content-length');
  const standard = [
    r.method,
    h('content-encoding'),
    h('content-language'),
    length === '0' ? '' : length,
    h('content-md5'),
    h('content-type'),
    // With x-ms-date present, the Date line is empty (the SDKs send x-ms-date).
    r.header('x-ms-date').length > 0 ? '' : h('date'),
    h('if-modified-since'),
    h('if-match'),
    h('if-none-match'),
    h('if-unmodified-since'),
    h('range'),
  ];
  const msHeaders = [...r.headerNames()]
    .filter((n) => n.startsWith('x-ms-'))
    .sort(storageHeaderOrder)
    .map(
      (n) =>
        `${n}:${r
          .header(n)
          .map((v) => v.trim())
          .join(',')}\n`,
    )
    .join('');
  const byName = new Map<string, string[]>();
  for (const [k, v] of r.query) {
    const name = k.toLowerCase();
    byName.set(name, [...(byName.get(name) ?? []), v]);
  }
  const resourceQuery = [...byName.keys()]
    .sort()
    .map((k) => `\n${k}:${byName.get(k)!.sort().join(',')}`)
    .join('');
  return `${standard.join('\n')}\n${msHeaders}/${r.account}${r.path}${resourceQuery}`;
}

function sas(r: AzureRequest, access: Access, tokens: TokenSet, now: number, skewMs: number): Grant {
  const q = (n: string) => param(r, n) ?? '';
  const version = q('sv');
  if (version < MIN_SAS_VERSION) {
    throw failed(
      `SAS version ${version || '(none)'} is not supported; sign with ${MIN_SAS_VERSION} or later`,
    );
  }
  const start = q('st') === '' ? Number.NEGATIVE_INFINITY : Date.parse(q('st'));
  const expiry = Date.parse(q('se'));
  if (Number.isNaN(expiry) || Number.isNaN(start))
    throw failed('the SAS needs a valid se (and st, when given)');
  if (now > expiry) throw failed('the SAS has expired');
  if (start - skewMs > now) throw failed('the SAS is not valid yet');
  const perms = q('sp');
  const need = access === 'read' ? 'r' : 'l';
  const httpsOnly = parseProtocol(q('spr'));
  const sources = parseSourceIp(q('sip'));
  let toSign: string;
  if (q('ss') !== '' || q('srt') !== '') {
    // Account SAS: the blob service, and the resource type the operation touches.
    if (!q('ss').includes('b')) throw denied('the account SAS does not include the blob service (ss=b)');
    const type = access === 'list' ? 'c' : 'o';
    if (!q('srt').includes(type))
      throw denied(`the account SAS does not include resource type ${type} (srt)`);
    toSign = [
      r.account,
      q('sp'),
      q('ss'),
      q('srt'),
      q('st'),
      q('se'),
      q('sip'),
      q('spr'),
      q('sv'),
      q('ses'),
      '',
    ].join('\n');
  } else {
    const sr = q('sr');
    if (sr !== 'b' && sr !== 'c') throw failed(`SAS resource sr=${sr || '(none)'} is not supported (b or c)`);
    if (sr === 'b' && (access !== 'read' || r.blob === ''))
      throw denied('a blob SAS (sr=b) reads only its blob');
    const resource = `/blob/${r.account}/${r.container}${sr === 'b' ? `/${r.blob}` : ''}`;
    toSign = [
      q('sp'),
      q('st'),
      q('se'),
      resource,
      q('si'),
      q('sip'),
      q('spr'),
      q('sv'),
      sr,
      q('snapshot'),
      q('ses'),
      q('rscc'),
      q('rscd'),
      q('rsce'),
      q('rscl'),
      q('rsct'),
    ].join('\n');
  }
  const grant = match(
    tokens,
    toSign,
    q('sig'),
    'Signature did not match: the SAS was not signed with a key of this node',
  );
  if (!perms.includes(need)) throw denied(`the SAS permissions (sp=${perms}) do not include ${need}`);
  // The signed restrictions, checked once the signature proved them (the service's codes and words).
  if (httpsOnly && !r.secure) {
    throw new AzureError(
      403,
      'AuthorizationProtocolMismatch',
      'This request is not authorized to perform this operation using this protocol. The SAS allows HTTPS only (spr=https); this request came over HTTP.',
    );
  }
  if (sources && !(r.clientAddress !== null && sources.check(r.clientAddress, familyOf(r.clientAddress)))) {
    throw new AzureError(
      403,
      'AuthorizationSourceIPMismatch',
      `This request is not authorized to perform this operation using this source IP ${r.clientAddress ?? '(none: a unix socket)'}. The SAS allows sip=${q('sip')}.`,
    );
  }
  return grant;
}

/** `spr`: https only (true), or https and http (false, also when absent). */
function parseProtocol(spr: string): boolean {
  if (spr === '' || spr === 'https,http') return false;
  if (spr === 'https') return true;
  throw failed(`the SAS protocol spr=${spr} is not https or https,http`);
}

/** `sip`: one address or an inclusive range `from-to` of one family; null when absent. */
function parseSourceIp(sip: string): BlockList | null {
  if (sip === '') return null;
  const dash = sip.indexOf('-');
  const from = dash < 0 ? sip : sip.slice(0, dash);
  const to = dash < 0 ? sip : sip.slice(dash + 1);
  const family = isIP(from);
  if (family === 0 || isIP(to) !== family) {
    throw failed(`the SAS source sip=${sip} is not an IP address or a range of two addresses of one family`);
  }
  const list = new BlockList();
  try {
    list.addRange(from, to, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    throw failed(`the SAS source range sip=${sip} ends before it starts`);
  }
  return list;
}

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** The grant of the token whose HMAC of `toSign` is `given` (base64). Every token is computed and compared. */
function match(tokens: TokenSet, toSign: string, given: string, detail: string): Grant {
  const want = Buffer.from(given, 'base64');
  let found: SigningKey | undefined;
  for (const key of tokens.signingKeys()) {
    const mac = createHmac('sha256', Buffer.from(key.secret, 'utf8')).update(toSign, 'utf8').digest();
    if (mac.length === want.length && timingSafeEqual(mac, want) && !found) found = key;
  }
  if (!found) throw failed(detail);
  return found.grant;
}

function failed(detail: string): AzureError {
  return new AzureError(
    403,
    'AuthenticationFailed',
    'Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.',
    { AuthenticationErrorDetail: detail },
  );
}

function denied(message: string): AzureError {
  return new AzureError(403, 'AuthorizationPermissionMismatch', message);
}

function first(r: AzureRequest, name: string): string | undefined {
  return r.header(name)[0];
}

function param(r: AzureRequest, name: string): string | undefined {
  return r.query.find(([k]) => k === name)?.[1];
}

/**
 * The order the service sorts x-ms-* headers in: a culture-invariant compare
 * in which '-' does not count at the first level (so x-ms-range-get-content-md5
 * sorts against x-ms-rangexyz as "xmsrangegetcontentmd5"), then plain order.
 */
export function storageHeaderOrder(a: string, b: string): number {
  const ka = a.replace(/-/g, '');
  const kb = b.replace(/-/g, '');
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
