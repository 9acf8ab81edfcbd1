/**
 * Name → version resolution as the read path sees it. A lone node (and a home
 * for its own names) resolves through its LeaseTable; a cluster member or a
 * sidecar resolves through LeaseHolder, which asks each name's home for a
 * lease (docs/coherence.md).
 */
import type { ObjectInfo, ObjectName } from '../origin/origin.js';

export interface Resolver {
  /**
   * The version `name` means now. NOT_FOUND when the origin has no such object.
   * `expectEtag`: the caller pins this version (If-Match, a manifest); a
   * binding naming another one is re-resolved at once rather than trusted.
   */
  resolve(name: ObjectName, signal?: AbortSignal, expectEtag?: string): Promise<ObjectInfo>;
  /** Drops what is known about `name` (its version vanished mid-read). */
  forget(name: ObjectName): void;
}
