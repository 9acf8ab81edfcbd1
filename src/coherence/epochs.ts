/**
 * A bounded per-name counter that only goes up: "has anything happened to
 * this name since I sent my request?" A request notes `of(id)` when it is
 * sent; its answer is used only if `of(id)` is unchanged when it arrives.
 *
 * Bounded by an LRU; a name pushed out does not fall back to 0 but to a floor
 * above every epoch ever evicted, so an old request can never find its epoch
 * current again (at worst a fresh answer is not kept, which costs one more
 * request, never a stale version).
 */
import { LRUCache } from 'lru-cache';

export class Epochs {
  private readonly epochs: LRUCache<string, number>;
  private floor = 0;

  constructor(max: number) {
    this.epochs = new LRUCache({
      max,
      // Only an eviction forgets an epoch; lru-cache also calls dispose on overwrite and delete.
      dispose: (epoch, _id, reason) => {
        if (reason === 'evict') this.floor = Math.max(this.floor, epoch);
      },
    });
  }

  of(id: string): number {
    return this.epochs.get(id) ?? this.floor;
  }

  /** Moves `id` to a new epoch and returns it. */
  bump(id: string): number {
    const next = this.of(id) + 1;
    this.epochs.set(id, next);
    return next;
  }
}
