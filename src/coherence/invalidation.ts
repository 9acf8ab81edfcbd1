/**
 * What every invalidation entry point (POST /v1/invalidate, `weightcache
 * invalidate`, the Azure Event Grid webhook, RESP WC.INVALIDATE) hands to the
 * coherence layer, and what it gets back (docs/coherence.md, "Invalidation").
 *
 * The promise resolves only when the invalidation is complete: every holder of
 * a lease on the old version acknowledged its revocation or its lease ran out.
 * From then on no read that resolves the name, anywhere, gets an older version
 * than `version`. It rejects with a CacheError when that cannot be promised
 * (the home is unreachable, the origin failed): the caller answers 5xx and the
 * invalidation should be retried.
 */
export type InvalidationTarget =
  | { readonly container: string; readonly key: string }
  | { readonly container: string; readonly prefix: string };

/** Where an invalidation came from (the `source` label of weightcache_invalidations_total). */
export type InvalidationSource = 'http' | 'cli' | 'eventgrid' | 'resp';

export interface BoundVersion {
  readonly etag: string;
  readonly size: number;
  readonly lastModified: string;
}

export interface InvalidationResult {
  readonly container: string;
  /** Set for a single-name invalidation. */
  readonly key?: string;
  /** Set for a prefix invalidation. */
  readonly prefix?: string;
  /** Single name: the version bound now; null when the origin no longer has the object. Absent for a prefix. */
  readonly version?: BoundVersion | null;
  /** How many names were re-resolved (1 for a key; the names under the prefix that anyone held). */
  readonly names: number;
  /** Leases revoked and acknowledged, and leases waited out (holder unreachable), summed over names. */
  readonly acked: number;
  readonly expired: number;
  /** Received → answered, milliseconds. */
  readonly durationMs: number;
}

export type Invalidate = (
  target: InvalidationTarget,
  source: InvalidationSource,
  signal?: AbortSignal,
) => Promise<InvalidationResult>;

export function isPrefixTarget(t: InvalidationTarget): t is Extract<InvalidationTarget, { prefix: string }> {
  return 'prefix' in t;
}
