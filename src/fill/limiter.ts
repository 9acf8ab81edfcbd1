/**
 * Bounds concurrent work (e.g. origin requests) with a bounded wait queue:
 * past `maxQueued` waiters a caller is refused with OVERLOADED at once rather
 * than queueing without limit, so a stampede costs memory we can count.
 */
import { CacheError } from '../errors/cache-error.js';

export class Limiter {
  private active = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(
    private readonly maxActive: number,
    private readonly maxQueued: number,
    private readonly what: string,
  ) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.maxActive) {
      if (this.waiters.length >= this.maxQueued) {
        throw new CacheError(
          'OVERLOADED',
          `${this.what}: ${this.maxActive} running and ${this.maxQueued} waiting`,
        );
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    } else {
      this.active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next)
        next(); // hand our slot over directly
      else this.active--;
    }
  }

  /** Slots free now (0 while anyone waits): what optional work, like read-ahead, may use. */
  get spare(): number {
    return this.maxActive - this.active;
  }

  get running(): number {
    return this.active;
  }
  get queued(): number {
    return this.waiters.length;
  }
}
