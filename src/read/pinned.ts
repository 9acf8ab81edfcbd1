/**
 * Pinned reads: a client names the version it wants (HTTP `?version=` or a
 * lone strong `If-Match`, RESP `{etag}container/key`, a manifest from
 * `weightcache pull`). One rule for every door:
 *
 * - The pin goes to the resolver as the expected ETag, so a binding naming
 *   another version is revalidated at once instead of trusted: a client that
 *   learned of a new upload before this node did is served the new version,
 *   not refused for the rest of the lease term.
 * - A pin that is still not the version the name means after that is
 *   refused (PRECONDITION_FAILED): the bytes asked for are not served here.
 */
import { CacheError } from '../errors/cache-error.js';
import { formatName } from '../origin/names.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';

export interface VersionResolver {
  resolve(name: ObjectName, signal?: AbortSignal, expectEtag?: string): Promise<ObjectInfo>;
}

/**
 * The version `name` means now. `pin`: the version the read must be of.
 * `expect`: a version the caller expects without requiring it (a lone strong
 * If-Match, whose failure the door answers itself), passed on as a hint.
 */
export async function resolvePinned(
  resolver: VersionResolver,
  name: ObjectName,
  pin: string | undefined,
  signal?: AbortSignal,
  expect?: string,
): Promise<ObjectInfo> {
  const info = await resolver.resolve(name, signal, pin ?? expect);
  if (pin !== undefined && pin !== info.etag) {
    throw new CacheError(
      'PRECONDITION_FAILED',
      `${formatName(name)}: version ${pin} is not the current version (${info.etag})`,
    );
  }
  return info;
}
