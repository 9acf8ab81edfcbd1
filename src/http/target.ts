/**
 * The request target (RFC 9112 §3.2), parsed once per request. Routing (hono)
 * and authorisation (auth.ts, and each handler's own check) both read the
 * result of this one parse, so they can never disagree about which route a
 * request names: the server rewrites `req.url` to the canonical form below
 * before hono sees it, and every check reads `targetOf(req)`.
 *
 * Rules (docs/http-api.md, "Request targets"; the native door must match):
 *   - at most MAX_TARGET_LENGTH characters, else 414 URI_TOO_LONG;
 *   - visible ASCII only (0x21–0x7E): anything else must be percent-encoded;
 *   - no fragment: a '#' anywhere is refused (a fragment is never part of a
 *     request target; a client that sends one is confused or probing);
 *   - origin-form `/path?query`; absolute-form `http(s)://authority/path?query`
 *     is accepted and treated exactly like its origin-form (the authority
 *     replaces the Host header, as §3.2.2 says); asterisk-form `*` only with
 *     OPTIONS; anything else (authority-form, relative paths) is refused;
 *   - the path is split on '/', each segment percent-decoded (UTF-8): a
 *     malformed escape, a '.' or '..' segment (also as `%2e`), an empty
 *     segment other than the last one (`//`), a raw or encoded backslash, NUL
 *     or another control character → 400 BAD_KEY;
 *   - the canonical path re-encodes each decoded segment (only what is not a
 *     `pchar` is escaped), so `/v1/%70refetch` and `/v1/prefetch` are one
 *     route; letters keep their case (`/V1/PREFETCH` is no route) and nothing
 *     else is folded (`/v1/prefetch/` and `/v1/prefetch;` are other routes).
 */
import type { IncomingMessage } from 'node:http';
import { CacheError } from '../errors/cache-error.js';

export const MAX_TARGET_LENGTH = 8192;

export interface RequestTarget {
  readonly form: 'origin' | 'absolute' | 'asterisk';
  /** The canonical path, e.g. `/v1/objects/models/a%20b`; `*` for asterisk-form. */
  readonly path: string;
  /** The path's segments after the leading '/', percent-decoded (`['v1', 'objects', 'models', 'a b']`). */
  readonly segments: readonly string[];
  /** The query after '?', as received; '' when there is none. */
  readonly query: string;
  /** absolute-form only: the authority (lower-cased host[:port]); null otherwise. */
  readonly authority: string | null;
}

const ABSOLUTE_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?]*)(.*)$/;
/** host[:port]: a reg-name (letters, digits, '-', '.', '_', '~'), an IPv4 address, or an [IPv6] literal. */
const AUTHORITY_RE = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
/** RFC 3986 pchar minus pct-encoded: what a canonical segment leaves unescaped. */
const PCHAR_RE = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;
const ALL_PCHAR_RE = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]*$/;
const NOT_VISIBLE_RE = /[^\x21-\x7e]/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** Parses a raw request target (`req.url` as node received it). Throws CacheError naming what is wrong. */
export function parseTarget(raw: string, method: string): RequestTarget {
  if (raw.length > MAX_TARGET_LENGTH) {
    throw new CacheError('URI_TOO_LONG', `the request target is longer than ${MAX_TARGET_LENGTH} characters`);
  }
  const bad = NOT_VISIBLE_RE.exec(raw);
  if (bad) {
    const c = bad[0].charCodeAt(0);
    throw new CacheError(
      'BAD_REQUEST',
      `the request target holds a byte 0x${c.toString(16).padStart(2, '0')} that must be percent-encoded`,
    );
  }
  if (raw.includes('#')) {
    throw new CacheError('BAD_REQUEST', "a request target may not carry a fragment ('#')");
  }
  if (raw === '*') {
    if (method !== 'OPTIONS')
      throw new CacheError('BAD_REQUEST', `the target '*' is only for OPTIONS, not ${method}`);
    return { form: 'asterisk', path: '*', segments: [], query: '', authority: null };
  }
  let form: 'origin' | 'absolute' = 'origin';
  let authority: string | null = null;
  let rest = raw;
  if (!raw.startsWith('/')) {
    const m = ABSOLUTE_RE.exec(raw);
    if (!m) {
      throw new CacheError(
        'BAD_REQUEST',
        'the request target must be a path (/…) or an absolute http(s) URL; authority-form is for CONNECT, which this server does not serve',
      );
    }
    const [, scheme = '', auth = '', after = ''] = m;
    if (!/^https?$/i.test(scheme))
      throw new CacheError('BAD_REQUEST', `unsupported URL scheme ${JSON.stringify(scheme)}`);
    if (auth.includes('@'))
      throw new CacheError('BAD_REQUEST', 'a request target may not carry user information (user@host)');
    if (!AUTHORITY_RE.test(auth)) {
      throw new CacheError(
        'BAD_REQUEST',
        `invalid host in the absolute request target: ${JSON.stringify(auth.slice(0, 100))}`,
      );
    }
    form = 'absolute';
    authority = auth.toLowerCase();
    // `http://host` and `http://host?q` name the path '/' (RFC 9112 §3.2.2, RFC 9110 §4.2.1).
    rest = after.startsWith('/') ? after : `/${after}`;
  }
  const q = rest.indexOf('?');
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  const segments = decodePath(rawPath);
  return { form, path: `/${segments.map(encodeSegment).join('/')}`, segments, query, authority };
}

/** `/a/b%20c/` → ['a', 'b c', '']; refuses what the rules above refuse. */
function decodePath(rawPath: string): string[] {
  if (rawPath.includes('\\')) throw new CacheError('BAD_KEY', 'the path holds a backslash');
  const parts = rawPath.slice(1).split('/');
  return parts.map((seg, i) => {
    if (seg === '' && i < parts.length - 1) {
      throw new CacheError('BAD_KEY', "the path has an empty segment ('//')");
    }
    if (ALL_PCHAR_RE.test(seg)) {
      // The common case: nothing to decode, nothing to refuse but dot segments.
      if (seg === '.' || seg === '..') throw new CacheError('BAD_KEY', `the path has a '${seg}' segment`);
      return seg;
    }
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch {
      throw new CacheError(
        'BAD_KEY',
        `malformed percent-encoding in path segment ${JSON.stringify(seg.slice(0, 100))}`,
      );
    }
    if (s === '.' || s === '..') throw new CacheError('BAD_KEY', `the path has a '${s}' segment`);
    if (CONTROL_RE.test(s)) throw new CacheError('BAD_KEY', 'the path holds a NUL or control character');
    if (s.includes('\\')) throw new CacheError('BAD_KEY', 'the path holds a backslash');
    return s;
  });
}

function encodeSegment(s: string): string {
  if (ALL_PCHAR_RE.test(s)) return s;
  let out = '';
  for (const ch of s) {
    if (PCHAR_RE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const targets = new WeakMap<IncomingMessage, RequestTarget>();

/**
 * Parses the request's target and makes it the only one anything downstream
 * sees: `req.url` becomes the canonical origin-form, and for absolute-form
 * the Host header becomes the target's authority (RFC 9112 §3.2.2).
 */
export function adoptTarget(req: IncomingMessage): RequestTarget {
  const t = parseTarget(req.url ?? '', req.method ?? '');
  targets.set(req, t);
  if (t.form !== 'asterisk') req.url = t.query === '' ? t.path : `${t.path}?${t.query}`;
  if (t.authority !== null) req.headers.host = t.authority;
  return t;
}

/** The target adoptTarget parsed for this request; a request that skipped it is refused (fail closed). */
export function targetOf(req: IncomingMessage): RequestTarget {
  const t = targets.get(req);
  if (!t) throw new CacheError('INTERNAL', 'request target was not parsed before routing');
  return t;
}
