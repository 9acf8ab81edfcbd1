/**
 * Coalesces concurrent work on one key: the first caller runs `fn`, everyone
 * who asks while it runs gets the same promise. This is what turns 50
 * simultaneous misses on a chunk into one origin read (groupcache's
 * singleflight). The entry is dropped when the work settles, so a failure is
 * not cached: the next caller tries again.
 */
export class SingleFlight<T> {
  private readonly inFlight = new Map<string, Promise<T>>();

  /** Runs or joins the work for `key`; `shared` says whether it joined. */
  do(key: string, fn: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const existing = this.inFlight.get(key);
    if (existing) return { promise: existing, shared: true };
    const promise = (async () => {
      try {
        return await fn();
      } finally {
        this.inFlight.delete(key);
      }
    })();
    this.inFlight.set(key, promise);
    return { promise, shared: false };
  }

  has(key: string): boolean {
    return this.inFlight.has(key);
  }

  get size(): number {
    return this.inFlight.size;
  }
}
