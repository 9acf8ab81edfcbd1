/**
 * Object names from request paths. The path was parsed once (target.ts):
 * segments are percent-decoded, and `..`, `%2e%2e`, empty segments, NUL and
 * backslashes were refused with 400 BAD_KEY before any route ran, so no
 * URL normalisation can turn a path into another one.
 */
import { CacheError } from '../errors/cache-error.js';
import { validateName } from '../origin/names.js';
import type { ObjectName } from '../origin/origin.js';
import { parseTarget, type RequestTarget } from './target.js';

export const OBJECTS_PREFIX = '/v1/objects/';
export const MANIFESTS_PREFIX = '/v1/manifests/';
export { MAX_TARGET_LENGTH } from './target.js';

/** The path of a request target, without its query. */
export function rawPath(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target : target.slice(0, q);
}

/** Percent-decodes each segment of a path ('/'-separated), with target.ts's rules. */
export function decodeSegments(path: string): string[] {
  return [...parseTarget(`/${path.replace(/^\//, '')}`, 'GET').segments];
}

/**
 * The container named right after a prefix (`/v1/objects/`, `/v1/manifests/`),
 * or undefined when the path is not under it. Auth's scope check and the
 * handlers read the container through this one function.
 */
export function containerUnder(t: RequestTarget, prefix: string): string | undefined {
  const head = prefix.split('/').filter(Boolean);
  if (t.segments.length <= head.length || head.some((s, i) => t.segments[i] !== s)) return undefined;
  return t.segments[head.length];
}

/** `{prefix}{container}/{rest...}` → container and the rest joined with '/'. */
export function splitUnder(t: RequestTarget, prefix: string): { container: string; rest: string[] } {
  const container = containerUnder(t, prefix);
  if (container === undefined) throw new CacheError('BAD_REQUEST', `expected ${prefix}{container}/…`);
  const head = prefix.split('/').filter(Boolean).length;
  return { container, rest: t.segments.slice(head + 1) };
}

/** `/v1/objects/{container}/{key...}` → a validated name. */
export function objectNameOf(t: RequestTarget, prefix = OBJECTS_PREFIX): ObjectName {
  const { container, rest } = splitUnder(t, prefix);
  if (rest.length === 0) throw new CacheError('BAD_KEY', `expected ${prefix}{container}/{key}, got no key`);
  return validateName({ container, key: rest.join('/') });
}

/** objectNameOf for a request-target string (e.g. a canonical `req.url`). */
export function objectNameFromTarget(target: string, prefix = OBJECTS_PREFIX): ObjectName {
  return objectNameOf(parseTarget(target, 'GET'), prefix);
}
