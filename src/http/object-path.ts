/**
 * Object names from request paths. We parse the raw request target (not a
 * URL-normalised one), so `..` and `%2e%2e` segments are seen and refused
 * with 400 BAD_KEY rather than silently resolved into another path.
 */
import { CacheError } from '../errors/cache-error.js';
import { validateName } from '../origin/names.js';
import type { ObjectName } from '../origin/origin.js';

export const OBJECTS_PREFIX = '/v1/objects/';
export const MANIFESTS_PREFIX = '/v1/manifests/';
export const MAX_TARGET_LENGTH = 8192;

/** The path of a raw request target (origin- or absolute-form), without its query. */
export function rawPath(target: string): string {
  return splitTarget(target).path;
}

/**
 * The path and raw query of a request target, origin-form (`/a/b?q`) or
 * absolute-form (`http://host/a/b?q`, RFC 9112 §3.2.2: the authority is
 * dropped; the Host header names the host).
 */
export function splitTarget(target: string): { path: string; query: string } {
  const abs = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(target);
  const rest = abs ? target.slice(abs[0].length) || '/' : target;
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  return { path: path.startsWith('/') ? path : `/${path}`, query: q < 0 ? '' : rest.slice(q + 1) };
}

/** Percent-decodes each segment, refusing malformed escapes and dot segments. */
export function decodeSegments(path: string): string[] {
  if (path.length > MAX_TARGET_LENGTH)
    throw new CacheError('BAD_KEY', `request path longer than ${MAX_TARGET_LENGTH}`);
  return path.split('/').map((seg) => {
    let s: string;
    try {
      s = decodeURIComponent(seg);
    } catch {
      throw new CacheError(
        'BAD_KEY',
        `malformed percent-encoding in path segment ${JSON.stringify(seg.slice(0, 100))}`,
      );
    }
    if (s === '.' || s === '..') throw new CacheError('BAD_KEY', `path has a '${s}' segment`);
    return s;
  });
}

/** `/v1/objects/{container}/{key...}` → a validated name. */
export function objectNameFromTarget(target: string, prefix = OBJECTS_PREFIX): ObjectName {
  const path = rawPath(target);
  if (!path.startsWith(prefix)) throw new CacheError('BAD_REQUEST', `expected ${prefix}{container}/{key}`);
  const [container = '', ...rest] = decodeSegments(path.slice(prefix.length));
  if (rest.length === 0) throw new CacheError('BAD_KEY', `expected ${prefix}{container}/{key}, got no key`);
  return validateName({ container, key: rest.join('/') });
}
