/**
 * Coalesces work on one key like SingleFlight, but a caller only ever gets the
 * result of work that *started after it asked*: while one run is in flight,
 * callers wait for a single follow-up run, shared by everyone who asked
 * meanwhile. For answers whose age matters (an origin stat standing in for a
 * lease: a stat sent before an invalidation was answered must not serve a read
 * that started after it). At most two runs per key exist at once.
 */
export class FreshFlight<T> {
  private readonly current = new Map<string, Promise<T>>();
  private readonly next = new Map<string, Promise<T>>();

  do(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.current.get(key);
    if (!running) return this.start(key, fn);
    let queued = this.next.get(key);
    if (!queued) {
      queued = running
        .then(
          () => {},
          () => {},
        )
        .then(() => {
          this.next.delete(key);
          return this.start(key, fn);
        });
      this.next.set(key, queued);
    }
    return queued;
  }

  private start(key: string, fn: () => Promise<T>): Promise<T> {
    const p: Promise<T> = fn().finally(() => {
      if (this.current.get(key) === p) this.current.delete(key);
    });
    this.current.set(key, p);
    return p;
  }
}
