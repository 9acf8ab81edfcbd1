/**
 * Keeps this process a lease holder of the files of every model in use on
 * the mount (docs/mount.md, "What a reader sees"), so that an invalidation
 * answered anywhere in the cluster reaches the mount at once: the name's
 * home revokes every lease outstanding before it completes, the revoke
 * drops the model's current snapshot here (node.ts wires Coherence.onRevoked
 * to RunningMount.invalidated), and the next path walk lists the origin.
 *
 * Mount reads are pinned to their snapshot's versions and resolve nothing,
 * so without this a sidecar would hold no lease and hear of no invalidation
 * until `mount.listInterval`. The versions resolved here are not compared
 * with the snapshot's: a lease that moved on without an invalidation (its
 * binding revalidated mid-upload) is no commit point, and flipping on it
 * could hand a loader half an upload.
 */

import { settleBounded } from '../fill/pool.js';
import type { ObjectInfo, ObjectName } from '../origin/origin.js';
import type { Snapshot } from './snapshot.js';

export type Resolve = (name: ObjectName, signal?: AbortSignal) => Promise<ObjectInfo>;

/**
 * Files per snapshot whose leases are kept, at most. Past that a model's
 * other files flip it only through an invalidation through this process or
 * the next listing (docs/mount.md).
 */
export const MAX_HELD_FILES = 4096;
/** A snapshot's leases are refreshed at most this often, on path walks through its name. */
export const HOLD_EVERY_MS = 1000;
/** Resolutions in flight per refresh (most are answered from held leases, without a request). */
const HOLD_CONCURRENCY = 16;
/** A refresh gives up after this long (a home that does not answer). */
const HOLD_TIMEOUT_MS = 30_000;

export class LeaseKeeper {
  private readonly refreshedAt = new WeakMap<Snapshot, number>();
  private readonly running = new WeakSet<Snapshot>();

  constructor(private readonly resolve: Resolve) {}

  /**
   * A path walk went through `snap`'s name: refresh its leases in the
   * background (renewed ahead of expiry by the holder) unless done lately.
   */
  touch(snap: Snapshot): void {
    const now = performance.now();
    if (this.running.has(snap) || now - (this.refreshedAt.get(snap) ?? -Infinity) < HOLD_EVERY_MS) return;
    this.running.add(snap);
    this.refreshedAt.set(snap, now);
    const files = snap.allFiles().slice(0, MAX_HELD_FILES);
    const signal = AbortSignal.timeout(HOLD_TIMEOUT_MS);
    // Failures are the read path's to report: a file that cannot be resolved now is read pinned anyway.
    void settleBounded(files, HOLD_CONCURRENCY, (f) => this.resolve(f, signal).catch(() => {}), {
      signal,
    }).finally(() => this.running.delete(snap));
  }
}
