/**
 * Validation of container and key names, shared by every origin and every
 * protocol door. A name that passes can be joined under a root directory or a
 * URL without escaping it: no '..' or '.' segments, no empty segments, no
 * leading '/', no backslashes, no NUL or other control characters.
 */
import { CacheError } from '../errors/cache-error.js';
import type { ObjectName } from './origin.js';

export const MAX_KEY_LENGTH = 1024; // Azure's blob-name limit; S3's is the same in bytes
export const MAX_CONTAINER_LENGTH = 255;

const CONTAINER_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

export function validateContainer(container: string): string {
  if (container.length === 0) throw new CacheError('BAD_KEY', 'container name is empty');
  if (container.length > MAX_CONTAINER_LENGTH) {
    throw new CacheError('BAD_KEY', `container name is longer than ${MAX_CONTAINER_LENGTH} characters`);
  }
  if (!CONTAINER_RE.test(container)) {
    throw new CacheError(
      'BAD_KEY',
      `container name ${JSON.stringify(container)} must start with a letter or digit and hold only letters, digits, '.', '_' and '-'`,
    );
  }
  return container;
}

/** Checks a key (or, with allowEmpty, a listing prefix). */
export function validateKey(key: string, opts: { allowEmpty?: boolean; what?: string } = {}): string {
  const what = opts.what ?? 'key';
  if (key.length === 0) {
    if (opts.allowEmpty) return key;
    throw new CacheError('BAD_KEY', `${what} is empty`);
  }
  if (key.length > MAX_KEY_LENGTH)
    throw new CacheError('BAD_KEY', `${what} is longer than ${MAX_KEY_LENGTH} characters`);
  if (CONTROL_RE.test(key)) throw new CacheError('BAD_KEY', `${what} contains a NUL or control character`);
  if (key.includes('\\')) throw new CacheError('BAD_KEY', `${what} contains a backslash`);
  if (key.startsWith('/')) throw new CacheError('BAD_KEY', `${what} must be relative (it starts with '/')`);
  const segments = key.split('/');
  // A prefix may end in '/', leaving one empty last segment.
  const last = opts.allowEmpty && segments.at(-1) === '' ? segments.length - 1 : segments.length;
  for (let i = 0; i < last; i++) {
    const seg = segments[i];
    if (seg === '') {
      const where = i === segments.length - 1 ? "ends with '/'" : "has an empty path segment ('//')";
      throw new CacheError('BAD_KEY', `${what} ${where}`);
    }
    if (seg === '.' || seg === '..') throw new CacheError('BAD_KEY', `${what} has a '${seg}' path segment`);
  }
  return key;
}

export function validateName(name: ObjectName): ObjectName {
  validateContainer(name.container);
  validateKey(name.key);
  return name;
}

/**
 * A name as 'container/key', the one spelling everywhere: messages and logs,
 * lease tables and homes (placement hashes it), RESP keys and replies.
 * parseName is its inverse.
 */
export function formatName(name: ObjectName): string {
  return `${name.container}/${name.key}`;
}

/** Splits 'container/key...' into a validated name. */
export function parseName(path: string): ObjectName {
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) {
    throw new CacheError('BAD_KEY', `expected 'container/key', got ${JSON.stringify(path.slice(0, 200))}`);
  }
  return validateName({ container: path.slice(0, slash), key: path.slice(slash + 1) });
}
