/**
 * Name → version resolution as the read path sees it. A lone node (and a home
 * for its own names) resolves through its LeaseTable; a cluster member or a
 * sidecar resolves through LeaseHolder, which asks each name's home for a
 * lease (docs/coherence.md).
 */
import type { ObjectInfo, ObjectName, ObjectVersion } from '../origin/origin.js';

export interface Resolver {
  /**
   * The version `name` means now. NOT_FOUND when the origin has no such object.
   * `expectEtag`: the caller pins this version (If-Match, a manifest); a
   * binding naming another one is re-resolved at once rather than trusted.
   * `minRemainingMs`: a binding of this process's own with less term left
   * is revalidated first (a lease from another home is renewed ahead at ¾
   * of its term anyway).
   */
  resolve(
    name: ObjectName,
    signal?: AbortSignal,
    expectEtag?: string,
    minRemainingMs?: number,
  ): Promise<ObjectInfo>;
  /**
   * `vanished`'s version is gone at the origin (found mid-read): drops the
   * name's binding if it binds that version or none. A binding to another
   * version stays: a newer one resolved since, or a peer that asked for an old
   * one, must not cost the readers of the current version a re-resolution.
   */
  forget(vanished: ObjectName & ObjectVersion): void;
}

/**
 * Where resolved versions are published for readers outside JavaScript: the
 * native door's fast path (src/http/fast-path.ts) serves hits from these
 * without asking a Resolver. Whoever holds a binding publishes it and takes
 * it back synchronously (docs/coherence.md, "The native binding"): a holder
 * calls unbind before it acknowledges a revoke, a home before it re-resolves
 * an invalidated name, so no reader can start on the old version after.
 */
export interface BindingSink {
  /** `info` is what its name means for the next `validForMs` milliseconds (at most). */
  bind(info: ObjectInfo, validForMs: number): void;
  unbind(name: ObjectName): void;
  /** Every name whose `container/key` starts with `idPrefix` ('' for all). */
  unbindPrefix(idPrefix: string): void;
}
