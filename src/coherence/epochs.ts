/**
 * "Has anything happened to this name since I sent my request?" A request
 * takes a reading `now()` when it is sent; its answer is used only if
 * `unchangedSince(id, reading)` holds when it arrives. Things that happen:
 * `bump(id)` (one name: an invalidation's re-resolve, a LEASE_REVOKE) and
 * `fence(prefix)` (every name under a prefix: a prefix invalidation, a
 * membership change).
 *
 * Bounded: bumps live in an LRU and fences in a short list. What is forgotten
 * raises a floor — the sequence number of the newest forgotten event — and
 * every request sent before the floor counts as overtaken. The floor is the
 * time of an old event, not "now", so forgetting never hurts a request sent
 * after what was forgotten: at worst an answer is not kept, costing one more
 * request, never a stale version.
 */
import { LRUCache } from 'lru-cache';

/** Prefix fences remembered one by one; older ones are folded into the floor. */
const MAX_FENCES = 256;

export class Epochs {
  private seq = 0;
  private readonly bumps: LRUCache<string, number>;
  private fences: { prefix: string; seq: number }[] = [];
  private floor = 0;

  constructor(max: number) {
    this.bumps = new LRUCache({
      max,
      // Only an eviction forgets a bump; lru-cache also calls dispose on overwrite and delete.
      dispose: (seq, _id, reason) => {
        if (reason === 'evict') this.floor = Math.max(this.floor, seq);
      },
    });
  }

  /** A reading to take when a request is sent. */
  now(): number {
    return this.seq;
  }

  bump(id: string): void {
    this.bumps.set(id, ++this.seq);
  }

  /** Everything under `prefix` (a `container/key` prefix; '' is every name) happened now. */
  fence(prefix: string): void {
    this.fences.push({ prefix, seq: ++this.seq });
    if (this.fences.length > MAX_FENCES) this.floor = Math.max(this.floor, this.fences.shift()!.seq);
  }

  /** The last thing that happened to `id` (its sequence number). */
  last(id: string): number {
    let last = Math.max(this.bumps.get(id) ?? 0, this.floor);
    for (const f of this.fences) if (f.seq > last && id.startsWith(f.prefix)) last = f.seq;
    return last;
  }

  /** True when nothing happened to `id` after the reading `since`. */
  unchangedSince(id: string, since: number): boolean {
    return this.last(id) <= since;
  }

  /** Names `id`'s current epoch: requests may be shared under one key, never across an event. */
  key(id: string): string {
    return `${this.last(id)}#${id}`;
  }
}
