/**
 * RESP keys are 'container/key'. A key may pin a version by prefixing its
 * ETag in braces: '{etag}container/key'. A valid name can never start with
 * '{' (container names start with a letter or digit), so the two forms can't
 * be confused however many '@', '#' or braces the key itself holds. A pinned
 * read is served only if the pin is the version the name means now, else it
 * fails with VERSION_CHANGED — the same rule as HTTP's `?version=`, in one
 * place (src/read/pinned.ts): a pin newer than this node's lease is
 * revalidated, not refused.
 */
import { CacheError } from '../errors/cache-error.js';
import { parseName } from '../origin/names.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import { resolvePinned } from '../read/pinned.js';
import type { ReadPath } from '../read/read-path.js';

export interface RespKey {
  readonly name: ObjectName;
  readonly pinned: string | null;
}

export function parseKey(raw: Buffer): RespKey {
  const s = raw.toString('utf8');
  if (s.startsWith('{')) {
    const close = s.indexOf('}');
    if (close <= 1) {
      throw new CacheError('BAD_KEY', "a pinned key is '{etag}container/key' with a non-empty etag");
    }
    return { name: parseName(s.slice(close + 1)), pinned: s.slice(1, close) };
  }
  return { name: parseName(s), pinned: null };
}

/** The version a key means now, checked against its pin (the pinned-read rule, src/read/pinned.ts). */
export function resolveKey(readPath: ReadPath, key: RespKey, signal?: AbortSignal): Promise<ObjectInfo> {
  return resolvePinned(readPath, key.name, key.pinned ?? undefined, signal);
}

/**
 * Resolves, or null when the key names nothing. A malformed key names nothing
 * too: in Redis any string is a key, and GET of one that does not exist is
 * nil, not an error — redis-benchmark's `GET key:__rand_int__` relies on it
 * (it exits on the first error reply). WC.STAT explains what is wrong with a key.
 * A stale pin is still an error: the object exists, in another version.
 */
export async function resolveOrNull(
  readPath: ReadPath,
  raw: Buffer,
  signal?: AbortSignal,
): Promise<ObjectInfo | null> {
  try {
    return await resolveKey(readPath, parseKey(raw), signal);
  } catch (err) {
    if (CacheError.is(err, 'NOT_FOUND') || CacheError.is(err, 'BAD_KEY')) return null;
    throw err;
  }
}
